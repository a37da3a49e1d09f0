"""The requests a sync costs, asserted on the wire (``responses`` in front of the real client
libraries): comments of a Zendesk export page from one ticket-event read, a Zendesk update without
a comment re-read, idempotency keys looked up together on Azure DevOps and Jira, and no comment
read for an Azure DevOps item without comments (issue 11, item 8)."""
from __future__ import annotations

import dataclasses
import json
from urllib.parse import parse_qs, urlsplit

import responses
from responses import matchers

from tests.test_connector_zendesk import EXPORT, JAN_1, SIDELOADS, _export
from tests.test_connector_zendesk_helpers import API, api, load, make  # noqa: F401  (fixtures)

EVENTS = f"{API}/incremental/ticket_events.json"


def _paths(api) -> list[str]:
    return [urlsplit(c.request.url).path for c in api.calls]


def test_a_pages_comments_come_from_one_ticket_event_read(api, make):
    _export(api, "export_page1", start_time=JAN_1, include=SIDELOADS)
    events = api.get(EVENTS, json=load("ticket_events"))
    connector = make(include_comments=True)
    page = next(connector.fetch_changes(None))
    records = {r.id: r for r in connector.load_details(page.records)}
    assert events.call_count == 1 and not [p for p in _paths(api) if "/comments" in p]
    query = parse_qs(urlsplit(events.calls[0].request.url).query)
    assert query["include"] == ["comment_events"]
    assert float(query["start_time"][0]) <= int(JAN_1)  # from the feed's start, less the margin
    # the description (the creating audit's comment) is left out, as in the comment list; a
    # ticket that is not on the page contributes nothing
    assert [c.body for c in records["35436"].comments] == ["Checked the tenant; escalating."]
    assert [(c.id, c.public) for c in records["35437"].comments] == [("1278", True)]


def test_the_next_pages_window_starts_at_the_feeds_position(api, make):
    _export(api, "export_page1", start_time=JAN_1, include=SIDELOADS)
    _export(api, "export_page2", cursor=load("export_page1")["after_cursor"], include=SIDELOADS)
    events = api.get(EVENTS, json=load("ticket_events"))
    connector = make(include_comments=True)
    pages = connector.fetch_changes(None)
    next(pages)
    second = next(pages)
    connector.load_details(second.records)
    start = float(parse_qs(urlsplit(events.calls[0].request.url).query)["start_time"][0])
    assert 1767603600 - 60 <= start < 1767603600  # page 1's newest stamp (09:00:00), less 60 s
    assert json.loads(second.cursor)["since"] == 1767603600.0


def test_a_record_from_elsewhere_reads_its_comment_list(api, make):
    comments = api.get(f"{API}/tickets/35436/comments.json", json=load("comments"))
    _export(api, "export_page1", start_time=JAN_1, include=SIDELOADS)
    connector = make(include_comments=True)
    page = next(connector.fetch_changes(None))
    other = dataclasses.replace(page.records[0], version="older")
    connector.load_details([other])  # not the version the page holds: no window for it
    assert comments.call_count == 1 and not [p for p in _paths(api) if "ticket_events" in p]


def test_a_window_the_event_export_cannot_pass_falls_back_to_comment_lists(api, make):
    _export(api, "export_page1", start_time=JAN_1, include=SIDELOADS)
    stuck = load("ticket_events")
    stuck.update(end_of_stream=False, end_time=0)  # no progress past one instant
    api.get(EVENTS, json=stuck)
    lists = [api.get(f"{API}/tickets/{t}/comments.json", json=load("comments")) for t in (35436, 35437)]
    connector = make(include_comments=True)
    records = connector.load_details(next(connector.fetch_changes(None)).records)
    assert [m.call_count for m in lists] == [1, 1] and all(r.comments for r in records)


def test_an_update_is_one_put_and_reads_no_comments(api, make):
    put = api.put(f"{API}/tickets/35436.json", json=load("update_response"))
    api.get(f"{API}/users/show_many.json", json={"users": load("show_many")["users"]})
    api.get(f"{API}/organizations/show_many.json", json={"organizations": load("show_many")["organizations"]})
    record = make(include_comments=True).update("35436", {"status": "hold"},
                                                expected_version="2026-01-05T08:58:52Z")
    assert put.call_count == 1 and record.comments == ()
    assert [c.request.method for c in api.calls if "/tickets/35436" in c.request.url] == ["PUT"]


# -- Azure DevOps ---------------------------------------------------------------------------------
from tests.test_connector_azure_devops import (WIT, batch, calls, conn, wiql_result,  # noqa: E402,F401
                                               work_item)
from tests.test_connector_azure_devops import api as ado_api  # noqa: E402,F401
from tests.test_connector_azure_devops import body as ado_body  # noqa: E402


def test_azure_devops_looks_up_a_batchs_keys_in_one_wiql_query(conn, ado_api):
    keys = [f"esc-{n}-azure_devops" for n in range(3)]
    ado_api.add(responses.POST, f"{WIT}/wiql", json=wiql_result([310, 311]))
    ado_api.add(responses.POST, f"{WIT}/workitemsbatch", json=batch(
        work_item(310, 1, "2026-01-05T09:30:00Z", **{"System.Tags": f"tiersync:{keys[0]}"}),
        work_item(311, 1, "2026-01-05T09:31:00Z", **{"System.Tags": f"tiersync:{keys[2]}; other"})))
    found = conn.find_by_idempotency_keys(keys)
    assert {k: r.id for k, r in found.items()} == {keys[0]: "310", keys[2]: "311"}
    (wiql,) = calls(ado_api, "POST", "/wiql")
    assert ado_body(wiql) == {"query": (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND ("
        + " OR ".join(f"[System.Tags] CONTAINS 'tiersync:{k}'" for k in keys)
        + ") ORDER BY [System.Id] ASC")}
    assert ado_body(calls(ado_api, "POST", "/workitemsbatch")[0])["ids"] == [310, 311]


def test_azure_devops_reads_no_comments_of_an_item_without_any(conn, ado_api):
    record = conn._record(_item(0))
    assert conn.load_details([record]) == [record] and not calls(ado_api, "GET", "/comments")


def _item(count: int):
    from azure.devops.v7_1.work_item_tracking.models import WorkItem
    return WorkItem(id=312, rev=2, fields={**work_item(312, 2, "2026-01-05T09:30:00Z")["fields"],
                                           "System.CommentCount": count})


# -- Jira -------------------------------------------------------------------------------------------
from tests.test_connector_jira import API as JIRA_API  # noqa: E402
from tests.test_connector_jira import env, http, params, search_page, sent  # noqa: E402,F401
from tests.test_connector_jira import load as jira_load  # noqa: E402
from tests.test_connector_jira import make as jira  # noqa: E402


def test_jira_looks_up_a_batchs_keys_in_one_search(env, http):
    http.get(f"{JIRA_API}/search/jql", json=search_page(jira_load("issue.json")))  # esc-0001
    found = jira().find_by_idempotency_keys(["tiersync:esc-0001", "tiersync:esc-0002"])
    assert {k: r.key for k, r in found.items()} == {"tiersync:esc-0001": "ENG-2"}
    (search,) = sent(http, "GET", "search/jql")
    assert params(search)["jql"] == ['issue.property[tiersync].key in ("tiersync:esc-0001", '
                                     '"tiersync:esc-0002") ORDER BY created ASC']
