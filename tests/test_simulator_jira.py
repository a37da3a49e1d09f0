"""The Jira simulator on its own: response shapes against Atlassian's published schemas, the JQL
subset and its errors, paging, auth, rate-limit headers, workflow and write validation."""
from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import uuid

import jsonschema
import pytest
import requests

from simulators.jira import DEFAULT_EMAIL, DEFAULT_TOKEN, JiraSimulator, load_default_fixture

FIXTURES = Path(__file__).parent / "fixtures" / "jira"
SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "jira" / "jira-cloud-platform-v3.json"
AUTH = (DEFAULT_EMAIL, DEFAULT_TOKEN)


@functools.lru_cache(maxsize=1)
def components() -> dict:
    return json.loads((FIXTURES / "openapi-components.json").read_text(encoding="utf-8"))["components"]


def check(instance, schema_name: str, array: bool = False) -> None:
    """Validate against a v3 component schema (v2 and v3 share these shapes)."""
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    schema = {"components": components(), **({"type": "array", "items": ref} if array else ref)}
    jsonschema.Draft7Validator(schema).validate(instance)


@pytest.fixture(scope="module")
def sim():
    with JiraSimulator() as simulator:
        yield simulator


@pytest.fixture
def api(sim):
    session = requests.Session()
    session.auth = AUTH

    def call(method: str, path: str, expect: int = 200, **kwargs):
        response = session.request(method, f"{sim.base_url}/rest/api/2/{path}", timeout=5, **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None
    return call


@pytest.fixture
def issue(api, sim):
    created = api("POST", "issue", 201, json={"fields": {
        "project": {"key": "ENG"}, "issuetype": {"name": "Escalation"}, "summary": "123456 - Disk full",
        "customfield_10101": {"value": "Sev 1"}, "priority": {"name": "Highest"}},
        "properties": [{"key": "tiersync", "value": {"key": f"k-{uuid.uuid4().hex[:8]}"}}]})
    check(created, "CreatedIssue")
    sim.settle_index()  # searchable at once, as if the index lag had passed (tested on its own)
    return created["key"]


def test_extracted_schemas_match_the_vendor_spec():
    if not SPEC.exists():  # the extract is what the tests use; this only guards its freshness
        return
    source = json.loads(SPEC.read_text(encoding="utf-8"))["components"]["schemas"]
    assert all(source[name] == schema for name, schema in components()["schemas"].items())


def test_responses_match_the_published_schemas(api, issue):
    check(api("GET", "serverInfo"), "ServerInformation")
    check(api("GET", "myself"), "User")
    check(api("GET", "field"), "FieldDetails", array=True)
    check(api("GET", "priority"), "Priority", array=True)
    check(api("GET", "status"), "StatusDetails", array=True)
    check(api("GET", "project/ENG"), "Project")
    check(api("GET", "project/ENG/statuses"), "IssueTypeWithStatus", array=True)
    check(api("GET", "issue/createmeta/ENG/issuetypes"), "PageOfCreateMetaIssueTypes")
    check(api("GET", "issue/createmeta/ENG/issuetypes/10001"), "PageOfCreateMetaIssueTypeWithField")
    check(api("GET", f"issue/{issue}", params={"properties": "tiersync"}), "IssueBean")
    check(api("GET", f"issue/{issue}/transitions"), "Transitions")
    comment = api("POST", f"issue/{issue}/comment", 201, json={"body": "hello"})
    check(comment, "Comment")
    check(api("GET", f"issue/{issue}/comment", params={"expand": "properties"}), "PageOfComments")
    check(api("POST", f"issue/{issue}/remotelink", 201, json={
        "globalId": "g-1", "object": {"url": "https://example.test/1", "title": "one"}}), "RemoteIssueLinkIdentifies")
    check(api("GET", f"issue/{issue}/remotelink"), "RemoteIssueLink", array=True)
    check(api("GET", f"issue/{issue}/properties/tiersync"), "EntityProperty")
    check(api("GET", f"issue/{issue}/properties"), "PropertyKeys")
    result = api("GET", "search/jql", params={"jql": "project = ENG", "fields": "*all", "maxResults": 1})
    check(result, "SearchAndReconcileResults")
    post = api("POST", "search/jql", json={"jql": "project = ENG", "fields": ["summary"], "maxResults": 1})
    check(post, "SearchAndReconcileResults")
    check(api("GET", "issue/NOPE-1", 404), "ErrorCollection")


def marker(sim: JiraSimulator, key: str) -> str:
    return sim.issue(key).properties["tiersync"]["key"]


def test_search_returns_ids_only_unless_fields_are_asked_for(api, sim, issue):
    bare = api("GET", "search/jql", params={"jql": f"key = {issue}"})
    assert list(bare["issues"][0]["fields"]) == []
    some = api("GET", "search/jql", params=[("jql", f"key = {issue}"), ("fields", "summary"), ("fields", "status")])
    assert set(some["issues"][0]["fields"]) == {"summary", "status"}
    props = api("GET", "search/jql", params={"jql": f"key = {issue}", "properties": "tiersync"})
    assert props["issues"][0]["properties"] == {"tiersync": {"key": marker(sim, issue)}}


@pytest.mark.parametrize("jql, message", [
    ("project = ENG OR project = SUP", "Expecting 'AND'"),
    ("summary ~ disk", "not supported"),
    ("ORDER BY updated ASC", "Unbounded JQL"),
    ('updated >= "-5d"', "Date value '-5d'"),
    ("flavour = sweet", "Field 'flavour' does not exist"),
    ("resolution = Fixed", "on the field 'resolution' is not supported by the simulator"),
    ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'"),
    ("project = ENG ORDER BY summary", "Not able to sort using field 'summary'"),
    ("project in (ENG, SUP)", "Expecting an operator"),
])
def test_unsupported_or_invalid_jql_is_a_400_in_jiras_shape(api, jql, message):
    error = api("GET", "search/jql", 400, params={"jql": jql})
    check(error, "ErrorCollection")
    assert message in error["errorMessages"][0]


def test_jql_clauses(api, sim, issue):
    def keys(jql: str) -> list[str]:
        return [i["key"] for i in api("GET", "search/jql", params={"jql": jql, "fields": "summary"})["issues"]]

    assert keys(f'issue.property[tiersync].key = "{marker(sim, issue)}"') == [issue]
    assert keys('issue.property[tiersync].key = "other"') == []
    assert issue in keys('project = "ENG" AND status = "To Do"')
    assert issue not in keys('project = ENG AND status != "to do"')
    sim.human_edit(issue, {"labels": ["needs-l3"]})
    sim.settle_index()
    assert keys("labels = needs-l3") == [issue]
    assert keys(f"key = {issue.lower()}") == [issue]


def test_jql_dates_are_read_in_the_account_time_zone(api, sim, issue):
    updated = sim.issue(issue).updated
    berlin = updated.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y/%m/%d %H:%M")
    as_if_utc = updated.astimezone(timezone.utc).strftime("%Y/%m/%d %H:%M")

    def found(value: str) -> bool:
        jql = f'project = ENG AND updated >= "{value}" ORDER BY updated ASC'
        return issue in [i["key"] for i in api("GET", "search/jql", params={"jql": jql})["issues"]]

    assert found(berlin)
    later = (updated + timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y/%m/%d %H:%M")
    assert not found(later)
    assert found(as_if_utc) and as_if_utc != berlin  # one hour earlier in Berlin: still included


def test_next_page_token_pages_through_every_issue_once(api, sim):
    for n in range(5):
        sim.human_create({"summary": f"page {n}"}, project="SUP")
    sim.settle_index()
    jql = "project = SUP ORDER BY updated ASC"
    seen, token, pages = [], None, 0
    while True:
        params = {"jql": jql, "maxResults": 2, **({"nextPageToken": token} if token else {})}
        page = api("GET", "search/jql", params=params)
        seen += [i["id"] for i in page["issues"]]
        pages += 1
        token = page.get("nextPageToken")
        assert page["isLast"] is (token is None)
        if token is None:
            break
    assert len(seen) == len(set(seen)) >= 5 and pages == (len(seen) + 1) // 2
    error = api("GET", "search/jql", 400, params={"jql": "project = ENG", "nextPageToken": token or "bogus"})
    assert "next page token" in error["errorMessages"][0]


def test_bulk_fetch_reads_up_to_100_issues_in_ascending_id_order(api, sim, issue):
    other = sim.human_create({"summary": "bulk other"}, project="SUP")
    ids = [str(sim.issue(k).id) for k in (issue, other)]
    result = api("POST", "issue/bulkfetch", json={
        "issueIdsOrKeys": [other, ids[0], "NOPE-404"], "fields": ["summary", "updated"],
        "properties": ["tiersync"]})
    check(result, "BulkIssueResults")
    assert [i["id"] for i in result["issues"]] == sorted(ids, key=int)  # by id, whatever was asked
    assert result["issueErrors"] == []  # not found: left out, not an error
    assert set(result["issues"][0]["fields"]) == {"summary", "updated"}
    assert result["issues"][0]["properties"] == {"tiersync": {"key": marker(sim, issue)}}
    navigable = api("POST", "issue/bulkfetch", json={"issueIdsOrKeys": [issue]})["issues"][0]
    assert {"summary", "status", "comment", "updated"} <= set(navigable["fields"])  # *navigable
    sim.set_index_lag(3600)  # bulk reads are not the search index: an edit shows at once
    try:
        sim.human_edit(issue, {"summary": "bulk edited"})
        again = api("POST", "issue/bulkfetch", json={"issueIdsOrKeys": [ids[0]], "fields": ["summary"]})
        assert again["issues"][0]["fields"]["summary"] == "bulk edited"
    finally:
        sim.set_index_lag(0)
        sim.settle_index()
    too_many = api("POST", "issue/bulkfetch", 400, json={"issueIdsOrKeys": [str(n) for n in range(101)]})
    check(too_many, "ErrorCollection")
    api("POST", "issue/bulkfetch", 400, json={"issueIdsOrKeys": [issue], "properties": list("abcdef")})
    api("POST", "issue/bulkfetch", 400, json={"fields": ["summary"]})


def test_search_pages_hold_more_issues_the_fewer_fields_are_asked_for(api, sim):
    for n in range(120):
        sim.human_create({"summary": f"cap {n}"}, project="SUP")
    sim.settle_index()

    def page(**params):
        return api("GET", "search/jql", params={"jql": "project = SUP", "maxResults": 5000, **params})

    assert len(page()["issues"]) == len(page(fields="key")["issues"]) >= 120  # ids or keys: 5000
    assert len(page(fields="updated")["issues"]) >= 120  # the listing: 1000
    assert len(page(fields="*all")["issues"]) == 100
    assert len(page(fields="updated", properties="tiersync")["issues"]) == 100
    assert len(page(fields="summary")["issues"]) == 100
    from simulators.jira_routes import page_cap
    assert [page_cap({"fields": f}) for f in (["id"], ["key,id"], ["updated"], ["id,updated"], ["*all"])] == \
        [5000, 5000, 1000, 1000, 100]
    assert page_cap({"fields": ["updated"], "expand": ["changelog"]}) == 100


def test_basic_auth_is_required(sim):
    anonymous = requests.get(f"{sim.base_url}/rest/api/2/myself", timeout=5)
    assert anonymous.status_code == 401 and "must be authenticated" in anonymous.text
    assert requests.get(f"{sim.base_url}/_sim/faults", timeout=5).status_code == 200
    with JiraSimulator(email="bot@example.com", token="right") as locked:
        wrong = requests.get(f"{locked.base_url}/rest/api/2/myself", auth=("bot@example.com", "nope"), timeout=5)
        right = requests.get(f"{locked.base_url}/rest/api/2/myself", auth=("bot@example.com", "right"), timeout=5)
    assert (wrong.status_code, right.status_code) == (401, 200)
    assert right.json()["emailAddress"] == "bot@example.com"


def test_injected_429_carries_jiras_rate_limit_headers(sim):
    sim.set_faults(fail_next=[{"path": "/rest/api/2/myself", "count": 1, "status": 429, "retry_after": 5}])
    limited = requests.get(f"{sim.base_url}/rest/api/2/myself", auth=AUTH, timeout=5)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "5"
    assert limited.headers["RateLimit-Reason"] == "jira-burst-based"
    reset = datetime.strptime(limited.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%MZ").replace(tzinfo=timezone.utc)
    assert timedelta(minutes=-1) <= reset - datetime.now(timezone.utc) <= timedelta(seconds=5)
    check(limited.json(), "ErrorCollection")


def test_rate_limit_per_minute_answers_429_with_limit_headers(sim):
    sim.set_faults(rate_limit_per_minute=3)
    try:
        replies = [requests.get(f"{sim.base_url}/rest/api/2/serverInfo", auth=AUTH, timeout=5) for _ in range(4)]
    finally:
        sim.set_faults(rate_limit_per_minute=0)
        sim._window.clear()
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in replies[:3]] == ["2", "1", "0"]
    assert replies[3].headers["X-RateLimit-Limit"] == "3" and int(replies[3].headers["Retry-After"]) <= 60


def test_workflow_is_not_fully_connected_but_reaches_every_status():
    sim = JiraSimulator()
    edges = {s: {t["to"] for t in sim.site.transitions_from(s)} for s in sim.site.statuses}
    assert edges["To Do"] == {"In Progress"} and "Done" not in edges["In Progress"]
    reached, todo = {"To Do"}, ["To Do"]
    while todo:
        for target in edges[todo.pop()] - reached:
            reached.add(target)
            todo.append(target)
    assert reached == set(sim.site.statuses)


def test_transition_must_be_available_from_the_current_status(api, issue):
    error = api("POST", f"issue/{issue}/transitions", 400, json={"transition": {"id": "71"}})
    assert error["errorMessages"] == ["Transition id '71' is not valid for this issue."]
    start = {"transition": {"id": "11"}, "update": {"comment": [{"add": {"body": "starting"}}]}}
    api("POST", f"issue/{issue}/transitions", 204, json=start)
    after = api("GET", f"issue/{issue}")["fields"]
    assert after["status"]["name"] == "In Progress" and after["comment"]["comments"][-1]["body"] == "starting"
    assert {t["id"] for t in api("GET", f"issue/{issue}/transitions")["transitions"]} == {"21", "31", "41", "61"}


@pytest.mark.parametrize("fields, error_key, message", [
    ({"customfield_10101": {"value": "Sev 9"}}, "customfield_10101", "Option value 'Sev 9' is not valid"),
    ({"customfield_10105": "2026-01-05T09:00:00Z"}, "customfield_10105", "Invalid date format"),
    ({"status": {"name": "Done"}}, "status", "cannot be set"),
    ({"customfield_19999": "x"}, "customfield_19999", "cannot be set"),
    ({"priority": {"name": "Blocker"}}, "priority", "valid priority"),
    ({"components": [{"name": "Mainframe"}]}, "components", "Component name 'Mainframe' is not valid"),
    ({"labels": ["two words"]}, "labels", "contains spaces"),
    ({"assignee": {"accountId": "nobody"}}, "assignee", "does not exist"),
])
def test_edits_are_validated_like_jira(api, issue, fields, error_key, message):
    error = api("PUT", f"issue/{issue}", 400, json={"fields": fields})
    check(error, "ErrorCollection")
    assert message in error["errors"][error_key]


def test_updated_moves_on_changes_and_comments_but_not_on_no_op_edits(api, sim, issue):
    def updated() -> str:
        return api("GET", f"issue/{issue}", params={"fields": "updated"})["fields"]["updated"]

    start = updated()
    api("PUT", f"issue/{issue}", 204, json={"fields": {"summary": "123456 - Disk full"}})
    assert updated() == start
    api("PUT", f"issue/{issue}", 204, json={"fields": {"customfield_10105": "2026-01-05T09:00:00.000+0000"}})
    changed = updated()
    assert changed > start and changed.endswith(("+0100", "+0200"))  # rendered in Europe/Berlin
    api("POST", f"issue/{issue}/comment", 201, json={"body": "a note"})
    assert updated() > changed
    assert sim.snapshot()["issues"][-1]["fields"]["customfield_10105"] == "2026-01-05T09:00:00Z"


def test_issue_properties_and_remote_links(api, sim, issue):
    # PUT property: 201 when new, 200 when replaced; 404 when missing
    api("PUT", f"issue/{issue}/properties/extra", 201, json={"a": 1})
    api("PUT", f"issue/{issue}/properties/extra", 200, json={"a": 2})
    assert api("GET", f"issue/{issue}/properties/extra") == {"key": "extra", "value": {"a": 2}}
    assert "does not exist" in api("GET", f"issue/{issue}/properties/missing", 404)["errorMessages"][0]
    link = {"globalId": "tiersync:zendesk:9", "object": {"url": "https://zd.example/9", "title": "SR 9"}}
    first = api("POST", f"issue/{issue}/remotelink", 201, json=link)
    again = api("POST", f"issue/{issue}/remotelink", 200, json={**link, "relationship": "mirrors"})
    assert first["id"] == again["id"]
    assert [l["relationship"] for l in api("GET", f"issue/{issue}/remotelink")] == ["mirrors"]
    assert "'title' is required." in api("POST", f"issue/{issue}/remotelink", 400,
                                         json={"object": {"url": "https://x"}})["errors"]["title"]
    applinks = requests.get(f"{sim.base_url}/rest/applinks/latest/listApplicationlinks", auth=AUTH, timeout=5)
    assert applinks.json() == {"list": []}


def test_internal_comments_only_exist_in_service_projects(api, sim):
    internal = [{"key": "sd.public.comment", "value": {"internal": True}}]
    for project, public in (("SUP", False), ("ENG", True)):
        key = sim.human_create({"summary": "visibility"}, project=project)
        comment = api("POST", f"issue/{key}/comment", 201, json={"body": "note", "properties": internal})
        assert comment["jsdPublic"] is public, project


def test_seed_snapshot_and_human_changes():
    fixture = load_default_fixture()
    fixture["site"] = {**fixture["site"], "time_zone": "UTC"}
    dana = "dana.okafor@engineering.example.com"
    fixture["issues"] = [{
        "key": "ENG-7", "status": "Resolved", "reporter": "lee.chen@engineering.example.com",
        "created": "2026-01-05T09:00:00Z", "updated": "2026-01-05T10:00:00Z",
        "fields": {"summary": "seeded", "customfield_10104": "L4", "assignee": dana},
        "comments": [{"body": "private", "internal": True, "created": "2026-01-05T09:30:00Z"}],
        "properties": {"tiersync": {"key": "seeded-1"}}}]
    sim = JiraSimulator(fixture=fixture)
    issue = sim.snapshot()["issues"][0]
    assert (issue["key"], issue["status"], issue["status_category"]) == ("ENG-7", "Resolved", "done")
    assert (issue["created"], issue["updated"]) == ("2026-01-05T09:00:00.000Z", "2026-01-05T10:00:00.000Z")
    assert issue["fields"]["customfield_10104"] == "L4" and issue["fields"]["assignee"] == dana
    # ENG is a software project: sd.public.comment does nothing there
    assert issue["comments"][0]["internal"] is False and issue["properties"] == {"tiersync": {"key": "seeded-1"}}
    assert sim.human_edit("ENG-7", {"status": "Done", "priority": "Low"}) > "2026-01-05T10:00"
    assert sim.snapshot()["issues"][0]["fields"]["priority"] == "Low"
    assert sim.human_create({"summary": "next"}) == "ENG-8"
    sim.seed({"issues": [{"fields": {"summary": "added"}}]})  # no site keys: issues are added
    assert [i["key"] for i in sim.snapshot()["issues"]] == ["ENG-7", "ENG-8", "ENG-9"]


def test_default_fixture_matches_the_shipped_mapping():
    from core.mapping import load_mapping, resolve_mapping_path

    mapping = load_mapping(resolve_mapping_path("jira"))
    sim = JiraSimulator()
    for name, fmap in mapping.fields.items():
        if fmap.path.startswith("customfield_"):
            assert fmap.path in sim.site.custom, name
            options = sim.site.custom[fmap.path].options
            assert all(v in options for v in fmap.values or {}), name
    state = mapping.fields["state"]
    assert set(state.values) | set(state.outbound_values.values()) <= set(sim.site.statuses)
    assert {s["category"] for s in sim.site.statuses.values()} == set(state.categories)
    assert set(mapping.fields["customer_priority"].values) <= {p["name"] for p in sim.site.priorities}
