"""The Jira simulator's realistic behaviours over HTTP: transition screens and resolutions, the
search index lag (at full scale), moving an issue, hidden emails, comment visibility by project
type, and the /_sim/jira control endpoints."""
from __future__ import annotations

import time

import pytest
import requests

from simulators.jira import DEFAULT_EMAIL, DEFAULT_TOKEN, JiraSimulator

AUTH = (DEFAULT_EMAIL, DEFAULT_TOKEN)


@pytest.fixture(scope="module")
def sim():
    with JiraSimulator(index_lag_seconds=1.0) as simulator:
        yield simulator


@pytest.fixture
def api(sim):
    session = requests.Session()
    session.auth = AUTH

    def call(method: str, path: str, expect: int = 200, **kwargs):
        url = path if path.startswith("/_sim") else f"/rest/api/2/{path}"
        response = session.request(method, f"{sim.base_url}{url}", timeout=5, **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None
    return call


def new_issue(api, project: str = "ENG", summary: str = "realism") -> dict:
    return api("POST", "issue", 201, json={"fields": {
        "project": {"key": project}, "issuetype": {"name": "Escalation"}, "summary": summary}})


def move(api, issue: str, transition_id: str, expect: int = 204, **extra):
    return api("POST", f"issue/{issue}/transitions", expect, json={"transition": {"id": transition_id}, **extra})


def test_resolve_screen_lists_a_required_resolution_with_the_sites_resolutions(api):
    issue = new_issue(api)["key"]
    move(api, issue, "11")  # To Do -> In Progress
    plain = api("GET", f"issue/{issue}/transitions")["transitions"]
    assert all("fields" not in t for t in plain)
    expanded = {t["id"]: t for t in api("GET", f"issue/{issue}/transitions",
                                        params={"expand": "transitions.fields"})["transitions"]}
    resolve = expanded["61"]
    assert resolve["hasScreen"] is True and expanded["31"]["fields"] == {}
    field = resolve["fields"]["resolution"]
    assert field["required"] is True and field["schema"] == {"type": "resolution", "system": "resolution"}
    assert [r["name"] for r in field["allowedValues"]] == [r["name"] for r in api("GET", "resolution")] \
        == ["Done", "Won't Do", "Duplicate", "Cannot Reproduce"]


def test_a_missing_required_resolution_is_a_400_in_jiras_shape(api):
    issue = new_issue(api)["key"]
    move(api, issue, "11")
    error = move(api, issue, "61", 400)
    assert error == {"errorMessages": [], "errors": {"resolution": "Resolution is required."}}
    error = move(api, issue, "61", 400, fields={"resolution": {"name": "Fixed"}})
    assert "Resolution 'Fixed' is not valid" in error["errors"]["resolution"]
    error = move(api, issue, "31", 400, fields={"resolution": {"name": "Done"}})  # not on that screen
    assert "cannot be set" in error["errors"]["resolution"]
    error = api("PUT", f"issue/{issue}", 400, json={"fields": {"resolution": {"name": "Done"}}})
    assert "cannot be set" in error["errors"]["resolution"]
    assert api("GET", f"issue/{issue}")["fields"]["status"]["name"] == "In Progress"


def test_resolution_is_set_by_the_screen_and_cleared_by_reopen(api):
    issue = new_issue(api)["key"]
    move(api, issue, "11")
    move(api, issue, "61", update={"resolution": [{"set": {"name": "Won't Do"}}]})
    fields = api("GET", f"issue/{issue}")["fields"]
    assert fields["resolution"]["name"] == "Won't Do" and fields["resolutiondate"]
    move(api, issue, "71", fields={"resolution": {"id": "10000"}})  # Close: Resolved -> Done
    assert api("GET", f"issue/{issue}")["fields"]["resolution"]["name"] == "Done"
    move(api, issue, "81")  # Reopen
    fields = api("GET", f"issue/{issue}")["fields"]
    assert fields["status"]["name"] == "In Progress" and fields["resolution"] is None
    assert fields["resolutiondate"] is None


def test_search_sees_new_and_changed_issues_only_after_the_index_lag(api, sim):
    created = new_issue(api, summary="lagging")

    def found(jql: str, **extra) -> list[str]:
        return [i["key"] for i in api("GET", "search/jql", params={"jql": jql, "fields": "summary",
                                                                     **extra})["issues"]]
    assert found(f"key = {created['key']}") == []  # not indexed yet
    assert api("GET", f"issue/{created['key']}")["key"] == created["key"]  # GET is consistent
    assert found(f"key = {created['key']}", reconcileIssues=created["id"]) == [created["key"]]
    time.sleep(1.05)
    assert found(f"key = {created['key']}") == [created["key"]]
    sim.human_edit(created["key"], {"labels": ["lag-check"]})
    assert found("labels = lag-check") == []  # the index still holds the issue without the label
    time.sleep(1.05)
    assert found("labels = lag-check") == [created["key"]]


def test_index_control_endpoint_sets_the_lag_and_settles(api, sim):
    try:
        assert api("POST", "/_sim/jira/index", json={"time_scale": 0.5}) == {"lag_seconds": 0.5, "time_scale": 0.5}
        created = new_issue(api)
        api("POST", "/_sim/jira/index", json={"settle": True})
        hits = api("GET", "search/jql", params={"jql": f"key = {created['key']}"})["issues"]
        assert [i["id"] for i in hits] == [created["id"]]
    finally:
        sim.set_index_lag(1.0, time_scale=1.0)
    assert api("GET", "/_sim/jira/index") == {"lag_seconds": 1.0, "time_scale": 1.0}


def test_a_moved_issue_gets_a_new_key_keeps_its_id_and_answers_to_the_old_key(api, sim):
    created = new_issue(api, summary="to be moved")
    moved = api("POST", "/_sim/jira/move", json={"issue": created["key"], "project": "SUP"})
    assert moved["id"] == created["id"] and moved["old_key"] == created["key"]
    assert moved["key"].startswith("SUP-")
    via_old = api("GET", f"issue/{created['key']}")
    assert (via_old["id"], via_old["key"]) == (created["id"], moved["key"])
    assert via_old["fields"]["project"]["key"] == "SUP"
    api("POST", f"issue/{created['key']}/comment", 201, json={"body": "still reachable"})
    assert api("POST", "/_sim/jira/move", 404, json={"issue": "NOPE-1", "project": "SUP"})["error"]
    assert "No project" in api("POST", "/_sim/jira/move", 400, json={"issue": moved["key"], "project": "XYZ"})["error"]


def test_a_user_who_hides_the_email_is_found_by_name_only_and_shown_without_it(api):
    assert api("GET", "user/search", params={"query": "private.person@engineering.example.com"}) == []
    (user,) = api("GET", "user/search", params={"query": "Private Person"})
    assert "emailAddress" not in user and user["accountId"]


@pytest.mark.parametrize("project, public", [("SUP", False), ("ENG", True)])
def test_sd_public_comment_makes_a_comment_internal_only_in_a_service_desk(api, project, public):
    issue = new_issue(api, project=project)["key"]
    assert api("GET", f"project/{project}")["projectTypeKey"] == ("service_desk" if project == "SUP" else "software")
    api("POST", f"issue/{issue}/comment", 201, json={
        "body": "note", "properties": [{"key": "sd.public.comment", "value": {"internal": True}}]})
    (comment,) = api("GET", f"issue/{issue}/comment")["comments"]
    assert comment["jsdPublic"] is public  # in a software project the property does nothing


def test_lost_create_replies_are_made_then_dropped(api, sim):
    api("POST", "/_sim/jira/create-reply-loss", json={"rate": 1.0, "seed": 3})
    try:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{sim.base_url}/rest/api/2/issue", auth=AUTH, timeout=5, json={"fields": {
                "project": {"key": "ENG"}, "issuetype": {"name": "Escalation"}, "summary": "made, reply lost"}})
    finally:
        sim.set_create_reply_loss(0.0)
    assert any(i["summary"] == "made, reply lost" for i in sim.snapshot()["issues"])
