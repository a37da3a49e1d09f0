"""What the Jira connector reads, counted by the simulator's request recording over real HTTP
(issue 11 item 8): an idle cycle is one listing whatever the overlap window holds, a change inside
the window is never missed, a comment beyond the issue's embedded page is still read."""
from __future__ import annotations

import pytest

from connectors.jira import JiraConfig, JiraConnector
from simulators.jira import JiraSimulator, connector_config


@pytest.fixture
def sim():
    with JiraSimulator(index_lag_seconds=0) as simulator:
        yield simulator


def build(sim: JiraSimulator, monkeypatch, **overrides) -> JiraConnector:
    wiring = connector_config(sim, **overrides)
    for name, value in wiring["env"].items():
        monkeypatch.setenv(name, value)
    return JiraConnector("jira", JiraConfig(**wiring["config"]))


def requests_of(sim: JiraSimulator) -> list[tuple[str, str]]:
    with sim.lock:
        return [(r.method, r.path) for r in sim.requests]


def drain(connector: JiraConnector, cursor: str | None) -> tuple[list, str | None]:
    records = []
    for page in connector.fetch_changes(cursor):
        records += page.records
        cursor = page.cursor
    return records, cursor


def test_an_idle_cycle_over_many_recently_changed_issues_is_one_read(sim, monkeypatch):
    keys = [sim.human_create({"summary": f"wave {n}"}, project="SUP") for n in range(450)]
    sim.settle_index()  # made faster than one a millisecond: some 'updated' are ahead of now
    jira = build(sim, monkeypatch, project="SUP")
    records, cursor = drain(jira, None)
    assert {r.key for r in records} >= set(keys)
    sent = requests_of(sim)
    bulk = [r for r in sent if r == ("POST", "/rest/api/2/issue/bulkfetch")]
    assert len(bulk) == 5  # 450 issues, 100 per bulk read
    assert ("GET", "/rest/api/2/issue/SUP-1/comment") not in sent  # no comment read per issue
    assert not [r for r in sent if r[1].startswith("/rest/api/2/issue/") and r[0] == "GET"]

    sim.clear_requests()
    again, cursor = drain(jira, cursor)  # every one of them is inside the overlap window
    assert again == []
    assert requests_of(sim) == [("GET", "/rest/api/2/search/jql")]
    [listing] = sim.requests
    assert listing.query["fields"] == ["updated"]

    fresh = build(sim, monkeypatch, project="SUP")  # a new process: its per-process reads
    sim.clear_requests()
    assert drain(fresh, cursor)[0] == []
    assert sorted(requests_of(sim)) == sorted([
        ("GET", "/rest/api/2/serverInfo"), ("GET", "/rest/api/2/myself"),
        ("GET", "/rest/api/2/search/jql")])


def test_a_change_inside_the_overlap_window_is_never_missed(sim, monkeypatch):
    a = sim.human_create({"summary": "a"}, project="SUP")
    b = sim.human_create({"summary": "b"}, project="SUP")
    sim.settle_index()
    jira = build(sim, monkeypatch, project="SUP")
    _, cursor = drain(jira, None)

    sim.set_index_lag(3600)  # nothing new is searchable until settled by hand
    late = sim.human_create({"summary": "indexed late"}, project="SUP")
    sim.human_edit(b, {"summary": "b edited later"})
    sim.index.settle([sim.issue(b)])  # the index shows the later change first
    records, cursor = drain(jira, cursor)
    assert [(r.key, r.data["summary"]) for r in records] == [(b, "b edited later")]

    sim.index.settle([sim.issue(late)])  # older than the cursor, inside the overlap window
    records, cursor = drain(jira, cursor)
    assert [(r.key, r.data["summary"]) for r in records] == [(late, "indexed late")]

    for text in ("a edited", "a edited again"):  # within the minute it was delivered in
        sim.human_edit(a, {"summary": text})
        sim.settle_index()
        records, cursor = drain(jira, cursor)
        assert [(r.key, r.data["summary"]) for r in records] == [(a, text)]
    sim.clear_requests()
    assert drain(jira, cursor)[0] == [] and len(sim.requests) == 1


def test_an_issue_edited_while_the_listing_is_read_in_bulk_is_delivered_in_the_same_scan(sim, monkeypatch):
    keys = [sim.human_create({"summary": f"scan {n}"}, project="SUP") for n in range(5)]
    sim.settle_index()
    jira = build(sim, monkeypatch, project="SUP", page_size=2)
    pages = jira.fetch_changes(None)
    first = next(pages)
    sim.human_edit(first.records[0].key, {"summary": "edited mid-scan"})
    rest = [r for page in pages for r in page.records]
    assert {r.key for r in first.records + rest} >= set(keys)
    assert [r.data["summary"] for r in rest if r.id == first.records[0].id] == ["edited mid-scan"]


def test_a_comment_beyond_the_fields_page_is_still_read(sim, monkeypatch):
    quiet = sim.human_create({"summary": "three notes"}, project="SUP")
    chatty = sim.human_create({"summary": "many notes"}, project="SUP")
    for n in range(3):
        sim.human_comment(quiet, f"quiet {n}")
    limit = sim.site.embedded_comment_limit
    for n in range(limit + 5):
        sim.human_comment(chatty, f"note {n}", internal=n % 2 == 1)
    sim.settle_index()
    jira = build(sim, monkeypatch, project="SUP", service_management=True)

    records = {r.key: r for r in drain(jira, None)[0]}

    assert [c.body for c in records[chatty].comments] == [f"note {n}" for n in range(limit + 5)]
    assert [c.public for c in records[chatty].comments[:2]] == [True, False]
    assert [c.body for c in records[quiet].comments] == ["quiet 0", "quiet 1", "quiet 2"]
    comment_reads = [r for r in requests_of(sim) if r[1].endswith("/comment")]
    assert comment_reads == [("GET", f"/rest/api/2/issue/{sim.issue(chatty).id}/comment")]


def test_a_new_issue_walks_to_its_first_status_without_a_read_once_its_kind_is_known(sim, monkeypatch):
    jira = build(sim, monkeypatch)
    first = jira.create({"summary": "first", "status": "Waiting for support"},
                        idempotency_key="tiersync:walk-1")
    sim.clear_requests()
    second = jira.create({"summary": "second", "status": "Waiting for support"},
                         idempotency_key="tiersync:walk-2")
    assert first.data["status"] == second.data["status"] == "Waiting for support"
    reads = [r for r in requests_of(sim) if r[0] == "GET"]
    assert reads == [("GET", f"/rest/api/2/issue/{second.id}")]  # the record, read once at the end
    assert "walking" not in sim.issue(second.key).properties["tiersync"]


def test_a_new_issue_that_is_not_where_its_kind_starts_is_read_and_walked_from_there(sim, monkeypatch):
    from simulators.jira_fixture import human_edit

    jira = build(sim, monkeypatch)
    jira.create({"summary": "first", "status": "In Progress"}, idempotency_key="tiersync:moved-1")
    real_create = sim.store.create

    def create_then_automation(*args, **kwargs):  # a rule moves every new issue on at once
        issue = real_create(*args, **kwargs)
        human_edit(sim.store, issue, {"status": "Waiting for customer"})
        return issue

    monkeypatch.setattr(sim.store, "create", create_then_automation)
    sim.clear_requests()
    record = jira.create({"summary": "moved", "status": "In Progress"}, idempotency_key="tiersync:moved-2")

    assert record.data["status"] == "In Progress" and sim.issue(record.key).status == "In Progress"
    posts = [r for r in sim.requests if r.path.endswith("/transitions") and r.method == "POST"]
    assert [r.status for r in posts] == [400, 204]  # the expected start refused, then from a read
    assert "walking" not in sim.issue(record.key).properties["tiersync"]
