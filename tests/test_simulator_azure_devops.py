"""The Azure DevOps simulator over HTTP: route discovery, auth, JSON Patch validation, WIQL,
batch reads, comments, rate limits and fault injection."""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import requests
from azure.devops.v7_1.work_item_tracking import WorkItemTrackingClient

from simulators import azure_devops_api as api
from simulators.azure_devops import AzureDevOpsSimulator, load_default_fixture

AUTH = ("", "any-pat")
SDK_METHODS = ("query_by_wiql", "get_work_items_batch", "create_work_item", "get_work_item",
               "update_work_item", "get_comments", "get_work_item_type_states",
               "get_work_item_type_fields_with_references", "get_work_item_type",
               "get_classification_node", "create_attachment", "read_reporting_revisions_get")


@pytest.fixture(scope="module")
def sim():
    simulator = AzureDevOpsSimulator()
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def org(sim):
    sim.set_faults(rate_limit_per_minute=0)
    return f"{sim.base_url}/myorg"


def wit(org: str) -> str:
    return f"{org}/Support/_apis/wit"


def create(org: str, ops: list, auth=AUTH) -> requests.Response:
    return requests.post(f"{wit(org)}/workitems/$Engagement Item", json=ops, auth=auth, timeout=10)


def add(path: str, value) -> dict:
    return {"op": "add", "path": path, "value": value}


def title(text: str = "123 - t") -> dict:
    return add("/fields/System.Title", text)


def wiql(org: str, query: str, **params) -> requests.Response:
    return requests.post(f"{wit(org)}/wiql", json={"query": query}, params=params, auth=AUTH, timeout=10)


def test_route_discovery_covers_every_sdk_call_the_connector_makes():
    ids = set()
    for name in SDK_METHODS:
        ids |= set(re.findall(r"location_id='([0-9a-f-]+)'",
                              inspect.getsource(getattr(WorkItemTrackingClient, name))))
    assert ids <= {loc["id"] for loc in api.options()["value"]}
    recorded = Path(__file__).parent / "fixtures" / "azure_devops" / "options.json"
    assert json.loads(recorded.read_text()) == api.options()  # the responses tests use this copy


def test_every_route_needs_a_pat_route_discovery_too(org):
    assert requests.options(f"{org}/_apis", timeout=10).status_code == 401
    assert requests.options(f"{org}/_apis", auth=AUTH, timeout=10).json()["count"] == len(api.LOCATIONS)
    denied = requests.get(f"{wit(org)}/workitemtypes/Engagement Item/states", timeout=10)
    assert denied.status_code == 401 and "TF400813" in denied.text
    with AzureDevOpsSimulator(pat="right") as strict:
        url = f"{strict.base_url}/myorg/Support/_apis/wit/workitemtypes/Engagement Item/states"
        assert requests.get(url, auth=("", "wrong"), timeout=10).status_code == 401
        assert requests.get(url, auth=("", "right"), timeout=10).status_code == 200


@pytest.mark.parametrize("op, status, text", [
    (add("/fields/Custom.Nope", "x"), 400, "TF51535: Cannot find field Custom.Nope."),
    (add("/fields/System.State", "Resolved"), 400, "TF401320: Rule Error for field State."),
    (add("/fields/System.AreaPath", "Marketplace Experience"), 400, "TF401347"),
    (add("/fields/Microsoft.VSTS.Common.Severity", "5 - Meh"), 400, "TF401320: Rule Error for field Severity."),
    (add("/fields/Custom.TopPartner", "maybe"), 400, "Error code: InvalidType"),
    (add("/fields/System.Rev", 9), 400, "TF401326"),
])
def test_mapping_mistakes_are_refused_like_azure_devops_does(org, op, status, text):
    response = create(org, [title(), op])
    assert response.status_code == status and text in response.json()["message"]
    assert set(response.json()) >= {"$id", "message", "typeKey", "typeName", "errorCode", "eventId"}


def test_a_title_is_required(org):
    response = create(org, [add("/fields/Custom.SRNumber", "1")])
    assert response.status_code == 400 and "field Title" in response.json()["message"]


def test_update_with_stale_rev_is_refused_and_changes_nothing(org, sim):
    item = create(org, [title(), add("/fields/System.State", "Actively Working")]).json()
    url = f"{wit(org)}/workitems/{item['id']}"
    ok = requests.patch(url, json=[{"op": "test", "path": "/rev", "value": 1},
                                   add("/fields/System.History", "first <b>note</b>"),
                                   add("/relations/-", {"rel": "Hyperlink", "url": "http://z/1",
                                                        "attributes": {"comment": "origin"}})],
                        auth=AUTH, timeout=10).json()
    assert ok["rev"] == 2 and ok["fields"]["System.CommentCount"] == 1
    assert ok["commentVersionRef"]["commentId"] >= 1
    assert ok["relations"] == [{"rel": "Hyperlink", "url": "http://z/1",
                                "attributes": {"comment": "origin", "isLocked": False}}]
    stale = requests.patch(url, json=[{"op": "test", "path": "/rev", "value": 1},
                                      add("/fields/System.State", "Closed")], auth=AUTH, timeout=10)
    assert stale.status_code == 412 and "TF26071" in stale.json()["message"]
    after = requests.get(url, auth=AUTH, timeout=10).json()
    assert (after["rev"], after["fields"]["System.State"]) == (2, "Actively Working")
    assert requests.get(f"{wit(org)}/workitems/999999", auth=AUTH, timeout=10).status_code == 404


def test_wiql_filters_sorts_and_matches_whole_tags(org):
    first = create(org, [title("wiql a"), add("/fields/System.Tags", "tiersync:abc; vip")]).json()
    create(org, [title("wiql b"), add("/fields/System.Tags", "tiersync:abcd")])
    result = wiql(org, "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
                       "AND [System.Tags] CONTAINS 'tiersync:abc'").json()
    assert [w["id"] for w in result["workItems"]] == [first["id"]]
    since = first["fields"]["System.ChangedDate"]
    ordered = wiql(org, "SELECT [System.Id] FROM WorkItems WHERE [System.ChangedDate] >= "
                        f"'{since}' ORDER BY [System.ChangedDate] DESC", timePrecision="true").json()
    ids = [w["id"] for w in ordered["workItems"]]
    assert ids == sorted(ids, reverse=True) and first["id"] in ids
    assert ordered["asOf"].endswith("Z") and ordered["sortColumns"][0]["descending"] is True


@pytest.mark.parametrize("query, params, text", [
    ("SELECT [System.Id] FROM WorkItems WHERE [System.ChangedDate] >= '2026-01-01T10:00:00Z'", {},
     "timePrecision=true"),
    ("SELECT [System.Id] FROM WorkItems WHERE [Custom.Typo] = 'x'", {}, "TF51005"),
    ("SELECT [System.Id] FROM WorkItems WHERE [System.Id] = 1 OR [System.Id] = 2", {}, "TF51006"),
])
def test_wiql_errors(org, query, params, text):
    response = wiql(org, query, **params)
    assert response.status_code == 400 and text in response.json()["message"]


def test_wiql_over_the_cap_is_vs402337_unless_top_limits_it(org, sim):
    for n in range(3):
        create(org, [title(f"cap {n}")])
    sim.wiql_cap = 2
    try:
        over = wiql(org, "SELECT [System.Id] FROM WorkItems")
        assert over.status_code == 400 and over.json()["message"].startswith("VS402337")
        assert len(wiql(org, "SELECT [System.Id] FROM WorkItems", **{"$top": 2}).json()["workItems"]) == 2
    finally:
        sim.wiql_cap = 20000


def test_batch_reads_as_of_and_omits_missing_ids(org):
    item = create(org, [title("batch")]).json()
    url = f"{wit(org)}/workitems/{item['id']}"
    requests.patch(url, json=[add("/fields/System.Title", "batch v2")], auth=AUTH, timeout=10)
    body = {"ids": [item["id"], 999999], "asOf": item["fields"]["System.ChangedDate"], "errorPolicy": "omit"}
    result = requests.post(f"{wit(org)}/workitemsbatch", json=body, auth=AUTH, timeout=10).json()
    assert result["value"][0]["fields"]["System.Title"] == "batch" and result["value"][1] is None
    body.pop("errorPolicy")
    assert requests.post(f"{wit(org)}/workitemsbatch", json=body, auth=AUTH, timeout=10).status_code == 404
    too_many = requests.post(f"{wit(org)}/workitemsbatch", json={"ids": list(range(1, 202))},
                             auth=AUTH, timeout=10)
    assert too_many.status_code == 400


def test_comments_page_with_a_continuation_token(org, sim):
    item_id = create(org, [title("comments")]).json()["id"]
    for n in range(3):
        sim.human_comment(item_id, f"note {n}")
    url = f"{wit(org)}/workItems/{item_id}/comments"
    first = requests.get(url, params={"$top": 2, "order": "asc"}, auth=AUTH, timeout=10).json()
    assert [c["text"] for c in first["comments"]] == ["note 0", "note 1"] and first["totalCount"] == 3
    rest = requests.get(url, params={"$top": 2, "order": "asc", "continuationToken": first["continuationToken"]},
                        auth=AUTH, timeout=10).json()
    assert [c["text"] for c in rest["comments"]] == ["note 2"] and "continuationToken" not in rest
    assert rest["comments"][0]["createdBy"]["uniqueName"] == "tier2.agent@fabrikam.example"


def test_rate_limit_carries_azure_devops_headers(org, sim):
    sim.set_faults(rate_limit_per_minute=2)
    try:
        url = f"{wit(org)}/workitemtypes/Engagement Item/states"
        first = requests.get(url, auth=AUTH, timeout=10)
        assert first.headers["X-RateLimit-Limit"] == "2" and first.headers["X-RateLimit-Resource"] == "Core"
        requests.get(url, auth=AUTH, timeout=10)
        blocked = requests.get(url, auth=AUTH, timeout=10)
        assert blocked.status_code == 429 and "TF400733" in blocked.json()["message"]
        assert int(blocked.headers["Retry-After"]) >= 0 and blocked.headers["X-RateLimit-Remaining"] == "0"
        assert "X-RateLimit-Reset" in blocked.headers
    finally:
        sim.set_faults(rate_limit_per_minute=0)


def test_injected_faults_answer_in_the_service_error_shape(org, sim):
    sim.set_faults(fail_next=[{"path": "/states$", "count": 1, "status": 503, "retry_after": 4}])
    url = f"{wit(org)}/workitemtypes/Engagement Item/states"
    failed = requests.get(url, auth=AUTH, timeout=10)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "4"
    assert failed.json()["typeKey"] and failed.json()["message"]
    assert requests.get(url, auth=AUTH, timeout=10).status_code == 200


def test_metadata_routes(org):
    states = requests.get(f"{wit(org)}/workitemtypes/Engagement Item/states", auth=AUTH, timeout=10).json()
    assert [(s["name"], s["category"]) for s in states["value"]][-2:] == [
        ("Solution Proposed", "Resolved"), ("Closed", "Completed")]
    fields = requests.get(f"{wit(org)}/workitemtypes/Engagement Item/fields",
                          params={"$expand": "allowedValues"}, auth=AUTH, timeout=10).json()
    by_ref = {f["referenceName"]: f for f in fields["value"]}
    assert by_ref["Custom.SupportTier"]["allowedValues"] == ["L1", "L2", "L3", "L4"]
    missing = requests.get(f"{wit(org)}/workitemtypes/Epic/states", auth=AUTH, timeout=10)
    assert missing.status_code == 404
    areas = requests.get(f"{wit(org)}/classificationnodes/areas", params={"$depth": 2},
                         auth=AUTH, timeout=10).json()
    assert [c["path"] for c in areas["children"]] == ["\\Support\\Area\\Marketplace Experience",
                                                      "\\Support\\Area\\Security SMEs"]


def test_seed_and_snapshot():
    fixture = load_default_fixture()
    fixture["work_items"] = [{"fields": {"System.Title": "123 - seeded", "System.Tags": "a; b",
                                         "System.AssignedTo": "Tier2 Agent <tier2.agent@fabrikam.example>"},
                              "changed_date": "2026-01-02T03:04:05Z",
                              "relations": [{"rel": "Hyperlink", "url": "http://z/9"}],
                              "comments": [{"text": "hello", "by": "queue.manager@fabrikam.example"}]}]
    sim = AzureDevOpsSimulator(fixture=fixture)
    (item,) = sim.snapshot()["work_items"]
    assert (item["id"], item["rev"], item["state"], item["tags"]) == (1, 2, "New", ["a", "b"])
    assert item["fields"]["System.AssignedTo"] == "tier2.agent@fabrikam.example"
    assert item["comments"][0]["text"] == "hello" and item["comments"][0]["by"] == "queue.manager@fabrikam.example"
    assert item["links"] == [{"rel": "Hyperlink", "url": "http://z/9", "comment": None}]
    assert sim.store.items[1].revisions[0].fields["System.ChangedDate"] == "2026-01-02T03:04:05Z"
    with pytest.raises(Exception, match="TF51535"):
        sim.seed({**fixture, "work_items": [{"fields": {"System.Title": "x", "Custom.Typo": 1}}]})


def test_the_basic_user_name_says_who_made_a_change(org):
    by_person = create(org, [title("by a person")], auth=("tier2.agent@fabrikam.example", "any-pat")).json()
    assert by_person["fields"]["System.ChangedBy"]["displayName"] == "Tier2 Agent"
    by_pat = create(org, [title("by the service")]).json()
    assert by_pat["fields"]["System.CreatedBy"]["uniqueName"] == "tiersync@fabrikam.example"


# -- the reporting revisions stream (simulators/azure_devops_reporting.py) ---------------------------
def revisions(org: str, **params) -> requests.Response:
    return requests.get(f"{wit(org)}/reporting/workItemRevisions", params=params, auth=AUTH, timeout=10)


def test_the_reporting_stream_pages_every_revision_after_a_start_by_its_token(sim, org):
    start = sim.now_text()
    item = sim.human_create({"System.Title": "900 - reporting"})
    for n in range(4):
        sim.human_comment(item, f"<p>note {n}</p>")
    seen, token, batches = [], None, 0
    while True:
        params = {"continuationToken": token} if token else {"startDateTime": start}
        page = revisions(org, **params, **{"$maxPageSize": 2, "$expand": "fields",
                                          "fields": "System.Rev,System.History,System.CommentCount"}).json()
        batches += 1
        seen += [(v["id"], v["rev"], v["fields"].get("System.History"), v["fields"]["System.CommentCount"])
                 for v in page["values"]]
        token = page["continuationToken"]
        assert "continuationToken=" in page["nextLink"]
        if page["isLastBatch"]:
            break
    mine = [s for s in seen if s[0] == item]
    assert mine == [(item, 1, None, 0)] + [(item, n + 2, f"<p>note {n}</p>", n + 1) for n in range(4)]
    assert batches == 3 and all("commentVersionRef" not in v for v in page["values"])
    assert revisions(org, continuationToken=token).json()["values"] == []  # nothing new


def test_the_reporting_stream_is_strict_about_its_parameters(sim, org):
    start = sim.now_text()
    item = sim.human_create({"System.Title": "901 - reporting"})
    sim.human_comment(item, "a note")
    assert revisions(org, startDateTime=start, continuationToken="1;1;1").status_code == 400
    assert revisions(org, **{"$maxPageSize": 201}).status_code == 400
    assert revisions(org, continuationToken="not-a-token").status_code == 400
    plain = revisions(org, startDateTime=start, fields="System.History,System.ChangedBy").json()
    assert [v["fields"] for v in plain["values"]][-1] == {
        "System.ChangedBy": "Tier2 Agent <tier2.agent@fabrikam.example>"}  # long text: $expand only
    wide = revisions(org, startDateTime=start, includeIdentityRef="true", **{"$expand": "fields"}).json()
    last = wide["values"][-1]["fields"]
    assert last["System.History"] == "a note" and last["System.ChangedBy"]["uniqueName"] == "tier2.agent@fabrikam.example"
    assert last["System.RevisedDate"] == "9999-01-01T00:00:00Z"
    other = revisions(org, startDateTime=start, types="Bug").json()
    assert other["values"] == [] and other["isLastBatch"] is True
