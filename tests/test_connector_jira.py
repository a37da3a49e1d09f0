"""The Jira connector against `responses`, in front of the real ``jira`` library.

Payloads are shaped by the examples in Atlassian's OpenAPI description (kept under
tests/fixtures/jira/); the tests assert on what the connector sends: JQL, query parameters and
request bodies, and on how often it sends them.
"""
from __future__ import annotations

import copy
import functools
import json
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from core.connector import OriginRef
from connectors.jira import JiraConfig, JiraConnector
from core.errors import NotTheApi, AuthError, BadRecord, Conflict, PermanentError, RateLimited, UnknownOutcome

BASE = "https://jira.example.test"
API = f"{BASE}/rest/api/2"
FIXTURES = Path(__file__).parent / "fixtures" / "jira"
SECRET = "tok-secret-123456"


@functools.lru_cache(maxsize=None)
def _text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def load(name: str):
    """A fresh copy of a fixture payload."""
    return json.loads(_text(name))


def issue_bean(key: str, updated: str, **fields):
    bean = load("issue.json")
    bean["key"], bean["id"] = key, str(10000 + int(key.split("-")[1]))
    bean["fields"]["updated"] = updated
    bean["fields"].update(fields)
    return bean


def search_page(*issues, token: str | None = None):
    page = {"issues": list(issues), "isLast": token is None}
    if token:
        page["nextPageToken"] = token
    return page


def bulk_serves(http, *issues):
    """``POST /issue/bulkfetch`` answering with those of ``issues`` it is asked for, in
    ascending id order (spec ``bulkFetchIssues``); the change listing names them, the bulk read
    returns them in full."""
    beans = {**{str(i["id"]): i for i in issues}, **{str(i["key"]): i for i in issues if "key" in i}}

    def reply(request):
        asked = json.loads(request.body)["issueIdsOrKeys"]
        found = sorted({beans[a]["id"]: beans[a] for a in asked if a in beans}.values(),
                       key=lambda i: int(i["id"]))
        return 200, {}, json.dumps({"issues": found, "issueErrors": []})
    http.add_callback(responses.POST, f"{API}/issue/bulkfetch", callback=reply,
                      content_type="application/json")


@pytest.fixture(autouse=True)
def env(monkeypatch):
    monkeypatch.setenv("JIRA_EMAIL", "bot@example.com")
    monkeypatch.setenv("JIRA_API_TOKEN", SECRET)


@pytest.fixture
def sleeps(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr("connectors.retry.sleep", waited.append)
    return waited


@pytest.fixture
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{API}/serverInfo", json=load("server_info.json"))
        rsps.get(f"{API}/field", json=load("fields.json"))
        rsps.get(f"{API}/myself", json=load("myself.json"))
        yield rsps


def make(**overrides) -> JiraConnector:
    settings = {"base_url": BASE, "mapping": "jira", "project": "ENG",
                "start_at": "2026-01-05T09:00:00Z", "idempotency_lookup": "property", **overrides}
    return JiraConnector("jira", JiraConfig(**settings))


def sent(http, method: str, path: str):
    """Requests sent to ``path`` (exact, without query) with ``method``."""
    return [c.request for c in http.calls
            if c.request.method == method and urlparse(c.request.url).path == f"/rest/api/2/{path}"]


def params(request) -> dict[str, list[str]]:
    return parse_qs(urlparse(request.url).query)


def body(request):
    return json.loads(request.body)


# -- incremental pull ----------------------------------------------------------------------------
def test_paging_across_pages_drops_records_repeated_at_the_boundary(http):
    http.get(f"{API}/search/jql", json=search_page(
        issue_bean("ENG-1", "2026-01-05T20:00:10.000+1100"),
        issue_bean("ENG-2", "2026-01-05T20:00:20.000+1100"), token="tok-2"))
    http.get(f"{API}/search/jql", json=search_page(
        issue_bean("ENG-2", "2026-01-05T20:00:20.000+1100"),
        issue_bean("ENG-3", "2026-01-05T20:00:30.000+1100")))
    bulk_serves(http, *(issue_bean(f"ENG-{n}", f"2026-01-05T20:00:{n}0.000+1100") for n in (1, 2, 3)))

    pages = list(make().fetch_changes(None))

    assert [[r.key for r in p.records] for p in pages] == [["ENG-1", "ENG-2"], ["ENG-3"]]
    first, second = sent(http, "GET", "search/jql")
    # start 09:00Z minus the 2-minute overlap, in the account's zone (Sydney, UTC+11 in January);
    # listed with `updated` only (the most issues a page holds), the new ones then read in bulk
    assert params(first) == {"jql": ['project = "ENG" AND updated >= "2026/01/05 19:58" ORDER BY updated ASC'],
                             "fields": ["updated"], "maxResults": ["5000"]}
    assert params(second)["nextPageToken"] == ["tok-2"]
    assert params(second)["jql"] == params(first)["jql"]
    reads = [body(r) for r in sent(http, "POST", "issue/bulkfetch")]
    assert reads == [{"issueIdsOrKeys": ["10001", "10002"], "fields": ["*all"], "properties": ["tiersync"],
                      "fieldsByKeys": False},
                     {"issueIdsOrKeys": ["10003"], "fields": ["*all"], "properties": ["tiersync"],
                      "fieldsByKeys": False}]  # ENG-2 again at the boundary: not read again


def test_resume_from_saved_cursor_never_redelivers_a_version(http):
    http.get(f"{API}/search/jql", json=search_page(
        issue_bean("ENG-1", "2026-01-05T20:00:10.000+1100"),
        issue_bean("ENG-2", "2026-01-05T20:00:20.000+1100")))
    bulk_serves(http, issue_bean("ENG-1", "2026-01-05T20:00:10.000+1100"),
                issue_bean("ENG-2", "2026-01-05T20:00:20.000+1100"))
    first = list(make().fetch_changes(None))
    cursor = first[-1].cursor

    http.replace(responses.GET, f"{API}/search/jql", json=search_page(
        issue_bean("ENG-1", "2026-01-05T20:00:10.000+1100"),  # in the overlap: already delivered
        issue_bean("ENG-2", "2026-01-05T20:00:20.000+1100"),
        issue_bean("ENG-1", "2026-01-05T20:05:00.000+1100")))  # a newer version of ENG-1
    bulk_serves(http, issue_bean("ENG-1", "2026-01-05T20:05:00.000+1100"))
    again = list(make().fetch_changes(cursor))

    assert [(r.key, r.version) for p in again for r in p.records] == [("ENG-1", "2026-01-05T20:05:00.000+1100")]
    resumed = sent(http, "GET", "search/jql")[-1]
    assert params(resumed)["jql"] == ['project = "ENG" AND updated >= "2026/01/05 19:58" ORDER BY updated ASC']
    assert "nextPageToken" not in params(resumed)


def test_search_restarts_from_the_moved_window_instead_of_following_the_token(http):
    http.get(f"{API}/search/jql", json=search_page(
        issue_bean("ENG-1", "2026-01-05T20:10:00.000+1100"), token="tok-2"))
    http.get(f"{API}/search/jql", json=search_page(issue_bean("ENG-4", "2026-01-05T20:11:00.000+1100")))
    bulk_serves(http, issue_bean("ENG-1", "2026-01-05T20:10:00.000+1100"),
                issue_bean("ENG-4", "2026-01-05T20:11:00.000+1100"))

    records = [r.key for p in make().fetch_changes(None) for r in p.records]

    assert records == ["ENG-1", "ENG-4"]
    second = sent(http, "GET", "search/jql")[1]
    assert params(second)["jql"] == ['project = "ENG" AND updated >= "2026/01/05 20:08" ORDER BY updated ASC']
    assert "nextPageToken" not in params(second)


def test_flat_view_of_an_issue(http):
    in_service_desk = load("issue.json")
    in_service_desk["fields"]["project"]["projectTypeKey"] = "service_desk"
    http.get(f"{API}/issue/10002", json=in_service_desk)

    record = make().get("10002")  # the project type decides how comments read, not the config

    assert params(sent(http, "GET", "issue/10002")[0]) == {"fields": ["*all"], "properties": ["tiersync"]}
    assert record.version == "2026-01-05T20:00:10.000+1100"
    assert record.updated_at == datetime(2026, 1, 5, 9, 0, 10, tzinfo=timezone.utc)
    assert record.idempotency_key == "tiersync:esc-0001"
    assert record.url == f"{BASE}/browse/ENG-2"
    data = record.data
    assert (data["status"], data["status.category"], data["priority"]) == ("In Progress", "indeterminate", "High")
    assert data["components"] == ["Portal"] and data["labels"] == ["bugfix", "blitz_test"]
    assert data["assignee"] == "5b10ac8d82e05b22cc7d4ef5"  # email hidden by privacy settings
    assert data["customfield_10101"] == "Sev 2" and data["customfield_10104"] == "L3"
    assert data["customfield_10105"] == "2026-01-05T22:00:00Z"
    assert data["customfield_10107"] == ["mia@example.com", "5b10ac8d82e05b22cc7d4ef5"]
    assert [(c.id, c.public) for c in record.comments] == [("10000", True), ("10001", False)]


# -- create and find -----------------------------------------------------------------------------
def test_create_sends_one_post_with_the_marker_then_links_back_and_finds_by_key(http):
    http.post(f"{API}/issue", json=load("created_issue.json"), status=201)
    http.get(f"{BASE}/rest/applinks/latest/listApplicationlinks", json={"list": []})
    http.post(f"{API}/issue/10002/remotelink", json=load("remotelink_created.json"), status=201)
    http.put(f"{API}/issue/10002/properties/tiersync", status=200)
    http.get(f"{API}/issue/10002", json=load("issue.json"))
    jira = make()

    record = jira.create({"summary": "12345678901234 - Portal down", "customfield_10101": "Sev 2",
                          "priority": "High", "components": "Portal, API",
                          "customfield_10105": "2026-01-05T22:00:00Z", "customfield_10103": None},
                         idempotency_key="tiersync:esc-0001",
                         origin=OriginRef("zendesk", "77", "https://tier1.zendesk.example/agent/tickets/77", "SR 77"))

    assert record.key == "ENG-2" and record.id == "10002" and record.idempotency_key == "tiersync:esc-0001"
    (create,) = sent(http, "POST", "issue")
    marker = {"key": "tiersync:esc-0001", "origin": "zendesk:77", "linked": False, "origin_title": "SR 77",
              "origin_url": "https://tier1.zendesk.example/agent/tickets/77"}
    assert body(create) == {
        "fields": {"summary": "12345678901234 - Portal down", "customfield_10101": {"value": "Sev 2"},
                   "priority": {"name": "High"}, "components": [{"name": "Portal"}, {"name": "API"}],
                   "customfield_10105": "2026-01-05T22:00:00.000+0000", "customfield_10103": None,
                   "project": {"key": "ENG"}, "issuetype": {"name": "Escalation"}},
        "properties": [{"key": "tiersync", "value": marker}]}
    (link,) = sent(http, "POST", "issue/10002/remotelink")
    assert body(link) == {"globalId": "tiersync:zendesk:77", "application": {"type": "tiersync", "name": "tiersync"},
                          "object": {"url": "https://tier1.zendesk.example/agent/tickets/77", "title": "SR 77"},
                          "relationship": "escalated from"}
    (linked,) = sent(http, "PUT", "issue/10002/properties/tiersync")  # marked: nothing to repair
    assert body(linked) == {**marker, "linked": True}

    http.get(f"{API}/search/jql", json=search_page(load("issue.json")))
    found = jira.find_by_idempotency_key("tiersync:esc-0001")
    assert found is not None and found.key == "ENG-2"
    assert params(sent(http, "GET", "search/jql")[-1])["jql"] == [
        'issue.property[tiersync].key = "tiersync:esc-0001" ORDER BY created ASC']


def test_find_ignores_issues_whose_marker_differs_and_escapes_the_key(http):
    http.get(f"{API}/search/jql", json=search_page(load("issue.json")))  # carries tiersync:esc-0001

    assert make().find_by_idempotency_key('other "key"') is None
    assert params(sent(http, "GET", "search/jql")[0])["jql"] == [
        'issue.property[tiersync].key = "other \\"key\\"" ORDER BY created ASC']


def test_label_lookup_writes_and_searches_a_marker_label(http):
    http.post(f"{API}/issue", json=load("created_issue.json"), status=201)
    marked = load("issue.json")
    marked["fields"]["labels"] = ["bugfix", "tiersync-tiersync:esc-0001"]
    http.get(f"{API}/issue/10002", json=marked)
    http.get(f"{API}/search/jql", json=search_page(marked))
    jira = make(idempotency_lookup="label")

    created = jira.create({"summary": "x", "labels": ["bugfix"]}, idempotency_key="tiersync:esc-0001")

    assert body(sent(http, "POST", "issue")[0])["fields"]["labels"] == ["bugfix", "tiersync-tiersync:esc-0001"]
    assert created.data["labels"] == ["bugfix"]  # the marker stays out of the flat view
    assert jira.find_by_idempotency_key("tiersync:esc-0001").key == "ENG-2"
    assert params(sent(http, "GET", "search/jql")[0])["jql"] == [
        'labels = "tiersync-tiersync:esc-0001" ORDER BY created ASC']


def test_500_on_create_is_followed_by_a_lookup_before_any_resend(http, sleeps):
    http.post(f"{API}/issue", json={"errorMessages": ["Internal server error"]}, status=500)
    http.post(f"{API}/issue", json=load("created_issue.json"), status=201)
    http.get(f"{API}/search/jql", json=search_page())  # the lookup: nothing was created
    http.get(f"{API}/issue/10002", json=load("issue.json"))

    record = make().create({"summary": "x"}, idempotency_key="tiersync:esc-0001")

    assert record.key == "ENG-2"
    order = [(c.request.method, urlparse(c.request.url).path) for c in http.calls
             if urlparse(c.request.url).path.endswith(("/issue", "/search/jql"))]
    assert order == [("POST", "/rest/api/2/issue"), ("GET", "/rest/api/2/search/jql"),
                     ("POST", "/rest/api/2/issue")]
    assert len(sleeps) == 1


def test_create_that_went_through_before_a_dropped_reply_is_not_resent(http, sleeps):
    http.post(f"{API}/issue", body=requests.ConnectionError("connection reset by peer"))
    http.get(f"{API}/search/jql", json=search_page(load("issue.json")))  # it did happen
    http.get(f"{API}/issue/10002", json=load("issue.json"))

    record = make().create({"summary": "x"}, idempotency_key="tiersync:esc-0001")

    assert record.key == "ENG-2"
    assert len(sent(http, "POST", "issue")) == 1


def test_create_still_unknown_after_the_retry_budget_raises_unknown_outcome(http, sleeps):
    http.post(f"{API}/issue", status=502, json={"errorMessages": ["Bad gateway"]})
    http.get(f"{API}/search/jql", json=search_page())

    with pytest.raises(UnknownOutcome):
        make(max_attempts=3).create({"summary": "x"}, idempotency_key="tiersync:esc-0001")
    assert len(sent(http, "POST", "issue")) == 3
    assert len(sent(http, "GET", "search/jql")) == 2  # a lookup before each resend


def test_invalid_field_is_a_permanent_error_with_jiras_message(http, sleeps):
    http.post(f"{API}/issue", json=load("errors_400.json"), status=400)

    with pytest.raises(PermanentError, match="Field 'priority' is required"):
        make().create({"summary": "x"}, idempotency_key="k")
    assert len(sent(http, "POST", "issue")) == 1 and sleeps == []


def test_unknown_field_path_is_refused_before_sending(http):
    with pytest.raises(PermanentError, match="customfield_99999"):
        make().create({"summary": "x", "customfield_99999": "y"}, idempotency_key="k")
    assert sent(http, "POST", "issue") == []


# -- rate limits and errors ------------------------------------------------------------------------
def test_429_with_retry_after_seconds_is_retried_once_after_the_stated_wait(http, sleeps):
    http.post(f"{API}/issue", status=429, headers={"Retry-After": "7"},
              json={"errorMessages": ["Rate limit exceeded."]})
    http.post(f"{API}/issue", json=load("created_issue.json"), status=201)
    http.get(f"{API}/issue/10002", json=load("issue.json"))

    make().create({"summary": "x"}, idempotency_key="tiersync:esc-0001")

    assert sleeps == [7.0]
    assert len(sent(http, "POST", "issue")) == 2  # a 429 was not processed: resent, no lookup
    assert sent(http, "GET", "search/jql") == []


def test_429_with_an_http_date_retry_after_waits_until_that_date(http, sleeps):
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    http.get(f"{API}/search/jql", status=429, headers={"Retry-After": format_datetime(later, usegmt=True)})
    http.get(f"{API}/search/jql", json=search_page())

    assert list(make().fetch_changes(None)) == []
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 31


def test_429_with_only_x_ratelimit_reset_waits_until_the_reset(http, sleeps):
    reset = (datetime.now(timezone.utc) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%MZ")
    http.get(f"{API}/issue/10002", status=429, headers={"X-RateLimit-Reset": reset})
    http.get(f"{API}/issue/10002", json=load("issue.json"))

    make().get("10002")

    assert len(sleeps) == 1 and 55 <= sleeps[0] <= 120


def test_rate_limit_that_never_lifts_raises_rate_limited(http, sleeps):
    http.get(f"{API}/issue/10002", status=429, headers={"Retry-After": "1"})

    with pytest.raises(RateLimited) as caught:
        make(max_attempts=2).get("10002")
    assert caught.value.retry_after == 1.0 and sleeps == [1.0]


def test_401_names_the_tracker_and_the_credential_variables_not_the_secret(http):
    http.replace(responses.GET, f"{API}/serverInfo", status=401,
                 body="Client must be authenticated to access this resource.")

    with pytest.raises(AuthError) as caught:
        make().get("10002")
    message = str(caught.value)
    assert "[jira]" in message and "HTTP 401" in message and "JIRA_EMAIL/JIRA_API_TOKEN" in message
    assert SECRET not in message


# -- updates -----------------------------------------------------------------------------------------
def status_read(updated: str, status: str = "In Progress", status_id: str = "3"):
    return {"id": "10002", "key": "ENG-2", "fields": {"updated": updated, "status": {"name": status, "id": status_id}}}


def test_update_on_a_stale_version_raises_conflict_and_writes_nothing(http):
    http.get(f"{API}/issue/10002", json=status_read("2026-01-05T20:07:00.000+1100"))

    with pytest.raises(Conflict):
        make().update("10002", {"summary": "new"}, expected_version="2026-01-05T20:00:10.000+1100")
    # one read: the write facts and the transitions its status offers (no transitions read)
    assert params(sent(http, "GET", "issue/10002")[0]) == {"fields": ["status,updated,project,issuetype"],
                                                         "properties": ["tiersync"],
                                                         "expand": ["transitions.fields"]}
    assert sent(http, "PUT", "issue/10002") == []


def test_update_writes_fields_then_transitions_to_the_wanted_status(http):
    version = "2026-01-05T20:00:10.000+1100"
    # one read before the writes (the version check, also the walk's start: an edit leaves the
    # status as it was) and one after them (the result); a transition Jira accepted to the
    # wanted status is not read back
    http.get(f"{API}/issue/10002", json=status_read(version))  # version check
    http.get(f"{API}/issue/10002", json=load("issue.json"))  # the result
    http.put(f"{API}/issue/10002", status=204)
    http.get(f"{API}/issue/10002/transitions", json=load("transitions.json"))
    http.post(f"{API}/issue/10002/transitions", status=204)

    make().update("10002", {"summary": "new", "customfield_10106": "Yes", "status": "Waiting for customer",
                            "status.category": "indeterminate"}, expected_version="2026-01-05T09:00:10Z")

    assert body(sent(http, "PUT", "issue/10002")[0]) == {
        "fields": {"summary": "new", "customfield_10106": {"value": "Yes"}}}
    assert body(sent(http, "POST", "issue/10002/transitions")[0]) == {"transition": {"id": "2"}}
    assert params(sent(http, "GET", "issue/10002/transitions")[0]) == {"expand": ["transitions.fields"]}
    assert len(sent(http, "GET", "issue/10002")) == 2


def test_no_transition_call_when_already_in_the_wanted_status(http):
    http.get(f"{API}/issue/10002", json=status_read("2026-01-05T20:00:10.000+1100", "Waiting for customer", "10010"))
    http.get(f"{API}/issue/10002", json=load("issue.json"))

    make().update("10002", {"status": "waiting for customer"}, expected_version="2026-01-05T20:00:10.000+1100")

    assert sent(http, "GET", "issue/10002/transitions") == []
    assert sent(http, "POST", "issue/10002/transitions") == []


def test_missing_transition_is_a_permanent_error_listing_the_choices(http):
    http.get(f"{API}/issue/10002", json=status_read("2026-01-05T20:00:10.000+1100"))
    only_back = load("transitions.json")["transitions"][:1]
    only_back[0]["to"].update(name="In Progress", id="3")  # the only way out leads back here
    http.get(f"{API}/issue/10002/transitions", json={"transitions": only_back})
    http.get(f"{API}/status", json=[{"id": "5", "name": "Resolved", "statusCategory": {"key": "done"}}])

    with pytest.raises(PermanentError, match="ENG-2: no workflow path from 'In Progress' to "
                                             "'Resolved'.*Ask customer -> In Progress"):
        make().update("10002", {"status": "Resolved"}, expected_version=None)
    assert sent(http, "POST", "issue/10002/transitions") == []


def test_assignee_email_is_resolved_to_an_account_id(http):
    http.get(f"{API}/user/search", json=[load("myself.json")])
    http.put(f"{API}/issue/10002", status=204)
    http.get(f"{API}/issue/10002", json=load("issue.json"))

    make().update("10002", {"assignee": "MIA@example.com"}, expected_version=None)

    assert params(sent(http, "GET", "user/search")[0]) == {"query": ["MIA@example.com"]}
    assert body(sent(http, "PUT", "issue/10002")[0]) == {
        "fields": {"assignee": {"accountId": "5b10a2844c20165700ede21g"}}}


# -- comments ------------------------------------------------------------------------------------------
def test_internal_comment_in_service_management_carries_the_sd_property(http):
    http.post(f"{API}/issue/10002/comment", json=load("comment_created.json"), status=201)

    assert make(service_management=True).add_comment("10002", "[tiersync] note", public=False) == "10005"
    sent_body = body(sent(http, "POST", "issue/10002/comment")[0])
    assert sent_body["body"] == "[tiersync] note"
    assert sent_body["properties"][1] == {"key": "sd.public.comment", "value": {"internal": True}}
    assert sent_body["properties"][0]["key"] == "tiersync" and len(sent_body["properties"][0]["value"]["nonce"]) == 32


def test_comment_with_unknown_outcome_is_found_by_its_nonce_and_not_resent(http, sleeps):
    http.post(f"{API}/issue/10002/comment", status=503, json={"errorMessages": ["Service unavailable"]})
    jira = make()

    def comments_with_our_nonce(request):
        nonce = body(sent(http, "POST", "issue/10002/comment")[0])["properties"][0]["value"]["nonce"]
        comment = load("comment_created.json")
        comment["properties"] = [{"key": "tiersync", "value": {"nonce": nonce}}]
        return 200, {}, json.dumps({"startAt": 0, "maxResults": 100, "total": 1, "comments": [comment]})

    http.add_callback(responses.GET, f"{API}/issue/10002/comment", callback=comments_with_our_nonce)

    assert jira.add_comment("10002", "[tiersync] note", public=False) == "10005"
    assert len(sent(http, "POST", "issue/10002/comment")) == 1
    assert params(sent(http, "GET", "issue/10002/comment")[0])["expand"] == ["properties"]


def test_public_comment_needs_service_management(http):
    software = status_read("2026-01-05T20:00:10.000+1100")
    software["fields"]["project"] = {"id": "10000", "key": "ENG", "projectTypeKey": "software"}
    http.get(f"{API}/issue/10002", json=software)
    with pytest.raises(PermanentError, match="ENG-2|10002.*Service Management"):
        make().add_comment("10002", "hello", public=True)
    assert make().capabilities().public_comments is False
    assert make(service_management=True).capabilities().public_comments is True


def test_config_rejects_a_naive_start_time():
    with pytest.raises(ValueError, match="time zone"):
        JiraConfig(base_url=BASE, mapping="jira", project="ENG", start_at="2026-01-05T09:00:00")


def test_create_whose_status_move_fails_still_returns_the_created_issue(http, caplog):
    http.post(f"{API}/issue", json=load("created_issue.json"), status=201)
    http.get(f"{API}/issue/10002", json=status_read("2026-01-05T20:00:10.000+1100", "To Do", "10000"))
    http.get(f"{API}/issue/10002", json=load("issue.json"))
    http.get(f"{API}/issue/10002/transitions", json=load("transitions.json"))

    record = make().create({"summary": "x", "status": "Resolved"}, idempotency_key="tiersync:esc-0001")

    assert record.key == "ENG-2" and len(sent(http, "POST", "issue")) == 1
    assert sent(http, "POST", "issue/10002/transitions") == []
    assert "created 10002 but could not move it to 'Resolved'" in caplog.text


def test_search_result_without_updated_is_an_unreadable_record_and_the_page_goes_on(http):
    broken = load("issue.json")
    del broken["fields"]["updated"]
    fine = load("issue.json")
    fine.update(key="ENG-3", id="10003")
    http.get(f"{API}/search/jql", json=search_page(broken, fine))
    bulk_serves(http, broken, fine)

    pages = list(make().fetch_changes(None))

    assert [r.key for p in pages for r in p.records] == ["ENG-3"]
    [bad] = [u for p in pages for u in p.unreadable]
    assert bad.id == "ENG-2" and "fields.updated: missing" in bad.reason


def test_html_instead_of_json_is_not_the_api_and_a_bad_base_url_is_permanent(http, sleeps):
    http.get(f"{API}/issue/ENG-2", body="<html>proxy error</html>", status=200)
    with pytest.raises(NotTheApi, match=r"\[jira\] https://jira.example.test/rest/api/2/issue/"
                                        r"ENG-2 answered HTTP 200 with an HTML page.*proxy error"):
        make().get("ENG-2")
    assert sleeps == []  # a login or proxy page is not retried

    with pytest.raises(PermanentError, match="check base_url"):
        make(base_url="jira.example.test").get("10002")  # no scheme


def test_a_bulk_read_error_is_read_on_its_own_and_a_vanished_issue_is_passed_over(http):
    listed = [issue_bean(f"ENG-{n}", f"2026-01-05T20:00:{n}0.000+1100") for n in (1, 2, 3)]
    http.get(f"{API}/search/jql", json=search_page(*listed))
    http.post(f"{API}/issue/bulkfetch", json={  # ENG-2 gone (deleted), ENG-3 a retriable error
        "issues": [listed[0]], "issueErrors": [{"id": "10003", "errorMessage": "Try again."}]})
    http.get(f"{API}/issue/10003", json=listed[2])

    pages = list(make().fetch_changes(None))

    assert [r.key for p in pages for r in p.records] == ["ENG-1", "ENG-3"]
    assert params(sent(http, "GET", "issue/10003")[0])["fields"] == ["*all"]
    http.replace(responses.GET, f"{API}/search/jql", json=search_page(*listed))
    assert list(make().fetch_changes(pages[-1].cursor)) == []  # ENG-2 is not asked for again
    assert len(sent(http, "POST", "issue/bulkfetch")) == 1


def test_webhook_hints_are_read_in_bulk(http):
    beans = [issue_bean(f"ENG-{n}", "2026-01-05T20:00:10.000+1100") for n in (1, 2)]
    bulk_serves(http, *beans)
    records = make().fetch_records(["10002", "ENG-1", "10009"])
    assert [r.key for r in records] == ["ENG-2", "ENG-1"]
    assert len(sent(http, "POST", "issue/bulkfetch")) == 1
