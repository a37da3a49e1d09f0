"""The Jira connector's workflow walk, transition screens, back-link repair and index-lag wait
against `responses`: the transition request bodies and the fields sent."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from connectors.jira import JiraConfig, JiraConnector
from core.errors import PermanentError
from core.mapping import load_mapping, resolve_mapping_path
from tests.test_connector_jira import API, BASE, load

RESOLUTIONS = [{"id": "10000", "name": "Done"}, {"id": "10001", "name": "Won't Do"}]
STATUS = {"To Do": ("10000", "new"), "In Progress": ("3", "indeterminate"),
          "Resolved": ("5", "done"), "Done": ("10001", "done")}


def status_json(name: str) -> dict:
    sid, category = STATUS[name]
    return {"id": sid, "name": name, "statusCategory": {"key": category}}


def at(name: str) -> dict:
    return {"id": "10002", "key": "ENG-2", "fields": {
        "updated": "2026-01-05T20:00:10.000+1100", "status": status_json(name),
        "project": {"id": "10000", "key": "ENG", "projectTypeKey": "software"},
        "issuetype": {"id": "10001", "name": "Escalation"}}}


def transition(tid: str, name: str, to: str, resolution: bool = False) -> dict:
    fields = {"resolution": {"required": True, "name": "Resolution", "key": "resolution",
                             "operations": ["set"], "schema": {"type": "resolution", "system": "resolution"},
                             "allowedValues": RESOLUTIONS}} if resolution else {}
    return {"id": tid, "name": name, "to": status_json(to), "hasScreen": resolution, "fields": fields}


WORKFLOW = {"To Do": [transition("11", "Start progress", "In Progress")],
            "In Progress": [transition("21", "Back to To Do", "To Do"),
                            transition("61", "Resolve", "Resolved", resolution=True)],
            "Resolved": [transition("71", "Close", "Done", resolution=True),
                         transition("81", "Reopen", "In Progress")]}


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.setenv("JIRA_EMAIL", "bot@example.com")
    monkeypatch.setenv("JIRA_API_TOKEN", "secret-token")
    monkeypatch.setattr("connectors.retry.sleep", lambda _s: None)


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{API}/serverInfo", json=load("server_info.json"))
        rsps.get(f"{API}/field", json=load("fields.json"))
        rsps.get(f"{API}/status", json=[status_json(n) for n in STATUS])
        yield rsps


class FakeJira:
    """A workflow behind `responses`: GET issue and transitions answer from the current status;
    POST transitions moves it (so the test asserts on what the connector sent)."""

    def __init__(self, http, status: str):
        self.status, self.posted, self.marks = status, [], []
        self.marker: dict = {"key": "tiersync:esc-0001"}
        http.add_callback(responses.GET, f"{API}/issue/10002", callback=self.read)
        http.add_callback(responses.PUT, f"{API}/issue/10002/properties/tiersync", callback=self.mark)
        http.add_callback(responses.GET, f"{API}/issue/10002/properties/tiersync",
                          callback=lambda _r: (200, {}, json.dumps({"key": "tiersync", "value": self.marker})))
        http.add_callback(responses.GET, f"{API}/issue/10002/transitions", callback=self.transitions)
        http.add_callback(responses.POST, f"{API}/issue/10002/transitions", callback=self.move)

    def mark(self, request):
        self.marker = json.loads(request.body)
        self.marks.append(self.marker.get("walking"))
        return 200, {}, ""

    def read(self, request):
        body = {**at(self.status), "properties": {"tiersync": self.marker}}
        if "*all" in parse_qs(urlparse(request.url).query).get("fields", [""])[0]:
            body = {**load("issue.json"), **body, "fields": {**load("issue.json")["fields"], **body["fields"]}}
        return 200, {}, json.dumps(body)

    def transitions(self, _request):
        return 200, {}, json.dumps({"transitions": WORKFLOW.get(self.status, [])})

    def move(self, request):
        body = json.loads(request.body)
        self.posted.append(body)
        chosen = next(t for t in WORKFLOW[self.status] if t["id"] == body["transition"]["id"])
        if chosen["fields"] and "resolution" not in body.get("fields", {}):
            return 400, {}, json.dumps({"errorMessages": [], "errors": {"resolution": "Resolution is required."}})
        self.status = chosen["to"]["name"]
        return 204, {}, ""


def make(mapping: bool = True, **overrides) -> JiraConnector:
    connector = JiraConnector("jira", JiraConfig(base_url=BASE, mapping="jira", project="ENG", **overrides))
    if mapping:
        connector.use_mapping(load_mapping(resolve_mapping_path("jira")))
    return connector


def test_done_is_reached_through_two_statuses_with_the_mapped_resolution(http):
    jira = FakeJira(http, "To Do")

    make().update("10002", {"status": "Done"}, expected_version=None)

    assert jira.posted == [{"transition": {"id": "11"}},
                           {"transition": {"id": "61"}, "fields": {"resolution": {"id": "10000"}}},
                           {"transition": {"id": "71"}, "fields": {"resolution": {"id": "10000"}}}]
    assert jira.status == "Done"
    walking = {"from": "To Do", "from_category": "new", "to": "Done"}
    assert jira.marks == [walking, None]  # marked before the first step, cleared on arrival
    listed = [c.request for c in http.calls if c.request.url.split("?")[0].endswith("/transitions")
              and c.request.method == "GET"]
    assert all(parse_qs(urlparse(r.url).query)["expand"] == ["transitions.fields"] for r in listed)


def test_the_learned_workflow_gives_the_shortest_path_back(http):
    jira = FakeJira(http, "To Do")
    connector = make()
    connector.update("10002", {"status": "Done"}, expected_version=None)
    jira.posted.clear()
    jira.status = "Resolved"

    connector.update("10002", {"status": "To Do"}, expected_version=None)  # Reopen, then Back

    assert jira.posted == [{"transition": {"id": "81"}}, {"transition": {"id": "21"}}]


def test_a_resolution_per_target_status_comes_from_the_mapping(http):
    jira = FakeJira(http, "In Progress")
    connector = make()
    connector.transition_fields = {"resolved": {"resolution": "Won't Do"}}

    connector.update("10002", {"status": "Resolved"}, expected_version=None)

    assert jira.posted == [{"transition": {"id": "61"}, "fields": {"resolution": {"id": "10001"}}}]


def test_a_required_field_the_mapping_lacks_stops_before_the_transition(http):
    jira = FakeJira(http, "In Progress")

    with pytest.raises(PermanentError) as caught:
        make(mapping=False).update("10002", {"status": "Resolved"}, expected_version=None)

    assert jira.posted == []
    assert ("issue ENG-2: moving from 'In Progress' to 'Resolved' (on the way to 'Resolved') needs "
            "the field 'resolution' (Resolution)") in str(caught.value)


def test_a_resolution_the_screen_does_not_allow_is_named(http):
    FakeJira(http, "In Progress")
    connector = make()
    connector.transition_fields = {"resolved": {"resolution": "Fixed"}}

    with pytest.raises(PermanentError, match="resolution 'Fixed' is not allowed on the transition "
                                             "screen \\(allowed: Done, Won't Do\\)"):
        connector.update("10002", {"status": "Resolved"}, expected_version=None)


def test_a_failed_back_link_is_repaired_by_the_next_cycle(http):
    http.post(f"{API}/issue", json=load("created_issue.json"), status=201)
    http.get(f"{BASE}/rest/applinks/latest/listApplicationlinks", json={"list": []})
    http.post(f"{API}/issue/10002/remotelink", body=requests.ConnectionError("reset"))
    http.post(f"{API}/issue/10002/remotelink", json=load("remotelink_created.json"), status=201)
    http.put(f"{API}/issue/10002/properties/tiersync", status=200)
    http.get(f"{API}/issue/10002/properties/tiersync", json={"key": "tiersync", "value": {
        "key": "tiersync:esc-9", "origin": "zendesk:9", "origin_url": "https://tier1.example/tickets/9",
        "origin_title": "SR 9", "linked": False}})
    http.get(f"{API}/issue/10002", json=load("issue.json"))
    from core.connector import OriginRef
    connector = make(max_attempts=1)

    connector.create({"summary": "x"}, idempotency_key="tiersync:esc-9",
                     origin=OriginRef("zendesk", "9", "https://tier1.example/tickets/9", "SR 9"))
    assert "10002" in connector.links.missing
    assert connector.repair() == 1 and connector.links.missing == {}

    links = [c.request for c in http.calls if c.request.url.endswith("/remotelink")]
    assert len(links) == 2 and json.loads(links[1].body)["globalId"] == "tiersync:zendesk:9"
    (marked,) = [c.request for c in http.calls if c.request.method == "PUT"]
    assert json.loads(marked.body)["linked"] is True and json.loads(marked.body)["origin"] == "zendesk:9"


def test_an_issue_read_with_an_unlinked_marker_is_queued_for_repair(http):
    unlinked = load("issue.json")
    unlinked["properties"] = {"tiersync": {"key": "tiersync:esc-0001", "origin": "zendesk:77", "linked": False,
                                           "origin_url": "https://tier1.example/tickets/77", "origin_title": "SR 77"}}
    http.get(f"{API}/issue/10002", json=unlinked)
    connector = make()

    connector.get("10002")

    assert connector.links.missing["10002"]["origin_url"] == "https://tier1.example/tickets/77"


def test_after_a_lost_create_reply_the_lookup_waits_for_the_index(http, monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr("connectors.jira_writes.time.sleep", waited.append)
    http.post(f"{API}/issue", body=requests.ConnectionError("reset after the create"))
    http.get(f"{API}/search/jql", json={"issues": [load("issue.json")], "isLast": True})
    http.get(f"{API}/issue/10002", json=load("issue.json"))

    record = make(search_lag_seconds=6, idempotency_lookup="property").create(
        {"summary": "x"}, idempotency_key="tiersync:esc-0001")

    assert record.key == "ENG-2" and len(waited) == 1 and 5 < waited[0] <= 6
    assert len([c for c in http.calls if c.request.method == "POST"]) == 1
    assert make(search_lag_seconds=6).capabilities().lookup_lag_seconds == 6


def test_an_interrupted_walk_reads_as_the_status_it_came_from(http):
    jira = FakeJira(http, "To Do")
    http.add_callback(responses.POST, f"{API}/issue/10002/transitions",
                      callback=lambda request: (503, {}, "{}") if jira.status == "In Progress" else jira.move(request))
    connector = make(max_attempts=1)

    with pytest.raises(Exception):
        connector.update("10002", {"status": "Done"}, expected_version=None)

    assert jira.status == "In Progress"  # stuck half way
    record = connector.get("10002")
    assert (record.data["status"], record.data["status.category"]) == ("To Do", "new")
    jira.marker["walking"]["to"] = "In Progress"  # had it been the goal, the real status shows
    assert connector.get("10002").data["status"] == "In Progress"


def test_a_mark_left_by_a_walk_that_arrived_never_hides_a_later_status(http):
    jira = FakeJira(http, "Resolved")
    jira.marker["walking"] = {"from": "In Progress", "from_category": "indeterminate", "to": "Resolved"}
    connector = make()
    assert connector.get("10002").data["status"] == "Resolved"  # arrived: the real status
    assert "10002" in connector.links.arrived

    connector.update("10002", {"status": "In Progress"}, expected_version=None)  # direct Reopen

    assert jira.marks == [None] and jira.posted == [{"transition": {"id": "81"}}]
    assert connector.get("10002").data["status"] == "In Progress"
    jira.marker["walking"] = {"from": "To Do", "from_category": "new", "to": "In Progress"}
    connector.get("10002")
    assert connector.repair() == 1 and "walking" not in jira.marker


def test_a_repair_keeps_the_mark_of_a_walk_begun_since_the_issue_was_read(http):
    """A property write replaces the whole value: the repair marks the link on the property as
    it is now, so a walk under way (another daemon's create) keeps its ``walking`` mark and a
    read between its steps still shows where it came from."""
    http.get(f"{BASE}/rest/applinks/latest/listApplicationlinks", json={"list": []})
    http.post(f"{API}/issue/10002/remotelink", json=load("remotelink_created.json"), status=201)
    jira = FakeJira(http, "To Do")
    jira.marker.update(origin="zendesk:77", origin_url="https://tier1.example/tickets/77",
                       origin_title="SR 77", linked=False)
    connector = make()
    connector.get("10002")  # read before the walk: the link is noted missing
    walking = {"from": "To Do", "from_category": "new", "to": "Waiting for support"}
    jira.marker = {**jira.marker, "walking": walking}  # a walk begins and takes its first step
    jira.status = "In Progress"

    assert connector.repair() == 1

    assert jira.marker["linked"] is True and jira.marker["walking"] == walking
    assert connector.get("10002").data["status"] == "To Do"  # mid-walk: where it came from


def test_a_repair_never_clears_the_mark_of_a_later_walk(http):
    jira = FakeJira(http, "Resolved")
    arrived = {"from": "In Progress", "from_category": "indeterminate", "to": "Resolved"}
    jira.marker["walking"] = arrived
    connector = make()
    connector.get("10002")  # a walk that arrived, its mark left: noted for clearing
    assert "10002" in connector.links.arrived
    later = {"from": "Resolved", "from_category": "done", "to": "Done"}
    jira.marker = {**jira.marker, "walking": later}  # meanwhile a new walk began

    connector.repair()

    assert jira.marker["walking"] == later and connector.links.arrived == {}
