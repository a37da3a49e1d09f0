"""One bad record never stops a feed; records that do not matter are never mapped (issue 9).

The real connectors (zenpy, jira, azure-devops over `responses`) feed the real engine and store:
- one unbuildable ticket among 1,000 is quarantined with tracker, id and a reason naming the
  field, the other 999 open escalations, and the cursor moves past the page;
- unrelated Jira issues with a custom status (``Triage``) and a select value the mapping lacks
  (``Critical``), and Microsoft's recorded work items (Bugs, Features, Tasks, test items of other
  processes, items read without ``System.WorkItemType``) are ignored, not quarantined;
- Zendesk reads comments only for the tickets that matter.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import responses

from connectors.zendesk import ZendeskConfig, ZendeskConnector
from core.decision import Decision
from core.engine import SyncEngine
from core.mapping import load_mapping
from core.store import Store
from tests.test_connector_zendesk_helpers import API, BASE, load

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
EXPORT = f"{API}/incremental/tickets/cursor.json"
COMMENTS = re.compile(rf"{re.escape(API)}/tickets/(\d+)/comments\.json.*")


class QuietPolicy:
    """Decides nothing: these tests are about reading, not about what the policy does."""

    def decide(self, before, after, observation, now) -> Decision:
        return Decision()


def engine_for(tmp_path, name: str, connector) -> SyncEngine:
    store = Store(f"sqlite:///{tmp_path / 'tiersync.db'}")
    store.migrate()
    mapping = load_mapping(MAPPINGS / f"{connector.kind}.yaml")
    return SyncEngine(store, {name: connector}, {name: mapping}, QuietPolicy())


def zendesk(monkeypatch, **settings) -> ZendeskConnector:
    monkeypatch.setenv("ZENDESK_EMAIL", "tiersync@tier1.example.com")
    monkeypatch.setenv("ZENDESK_TOKEN", "tok-123456")
    return ZendeskConnector("zendesk", ZendeskConfig(base_url=BASE, mapping="zendesk",
                                                     start_at="epoch", max_wait_seconds=0.1,
                                                     **settings))


def export_of(tickets: list[dict]) -> dict:
    page = load("export_page1")
    page.update(tickets=tickets, end_of_stream=True)
    return page


def comments_answer(request):
    ticket_id = int(COMMENTS.match(request.url).group(1))
    first = {"id": ticket_id * 10, "type": "Comment", "author_id": 235323, "body": "description",
             "public": True, "created_at": "2026-01-05T08:55:29Z"}
    return 200, {"Content-Type": "application/json"}, json.dumps({"comments": [first],
                                                                  "next_page": None, "count": 1})


def test_one_unbuildable_ticket_among_1000_is_quarantined_and_the_rest_syncs(tmp_path, monkeypatch):
    template = load("export_page1")["tickets"][0]
    tickets = []
    for number in range(1000):
        ticket = copy.deepcopy(template)
        ticket.update(id=50_000 + number, subject=f"{12345678900000 + number} - Portal down")
        tickets.append(ticket)
    broken = tickets[500]
    broken["updated_at"] = 1  # Atlassian-style: a number where the API documents a date string
    page = export_of(tickets)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as http:
        http.get(EXPORT, json=page)
        # comments off: 999 comment reads would only slow this test (they have one of their own)
        engine = engine_for(tmp_path, "zendesk", zendesk(monkeypatch, include_comments=False))
        report = engine.run_cycle(dry_run=True)  # reading is the point: no write-backs sent

    assert (report.opened, report.quarantined, report.connector_errors) == (999, 1, [])
    with engine.store.transaction() as tx:
        [row] = engine.store.quarantined(tx)
        cursor = engine.store.get_cursor(tx, "zendesk")
    assert (row["connector"], row["remote_id"]) == ("zendesk", "50500")
    assert "updated_at: expected a string, got a number" in row["reason"]
    assert page["after_cursor"] in cursor  # past the page, bad ticket included
    assert report.exit_code == 1  # a quarantine is reported, the feed did not stop


def test_comments_are_read_only_for_tickets_that_matter(tmp_path, monkeypatch):
    template = load("export_page1")["tickets"][0]
    escalating = copy.deepcopy(template)
    others = []
    for number in range(5):
        other = copy.deepcopy(template)
        other.update(id=60_000 + number, tags=["billing"], status="weird-custom-status")
        others.append(other)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as http:
        http.get(EXPORT, json=export_of([escalating, *others]))
        http.add_callback(responses.GET, COMMENTS, callback=comments_answer)
        engine = engine_for(tmp_path, "zendesk", zendesk(monkeypatch))
        report = engine.run_cycle()
        asked = sorted(int(COMMENTS.match(c.request.url).group(1)) for c in http.calls
                       if COMMENTS.match(c.request.url))
    assert asked == [escalating["id"]]
    assert (report.opened, report.ignored, report.quarantined) == (1, 5, 0)


# -- unrelated records are ignored, not quarantined -------------------------------------------------
def test_unrelated_jira_issues_with_custom_status_and_unknown_priority_are_ignored(tmp_path, monkeypatch):
    from core.errors import MappingError
    from tests.test_connector_jira import (API as JIRA_API, bulk_serves, issue_bean, load as jira_load,
                                           make, search_page)
    monkeypatch.setenv("JIRA_EMAIL", "bot@example.com")
    monkeypatch.setenv("JIRA_API_TOKEN", "tok-secret-123456")
    triage = {"name": "Triage", "id": "10500", "statusCategory": {"key": "new", "name": "To Do"}}
    critical = {"value": "Critical", "id": "10900"}  # a severity option the mapping lacks
    issues = [issue_bean(f"ENG-{n}", "2026-01-05T10:00:00.000+0000", status=triage,
                         customfield_10101=critical) for n in range(20, 25)]
    atlassian = issue_bean("ENG-30", "2026-01-05T10:00:00.000+0000")
    atlassian["fields"].update(updated=1, comment=[{"body": "a list, not a page"}])  # the spec's example
    with responses.RequestsMock(assert_all_requests_are_fired=False) as http:
        http.get(f"{JIRA_API}/serverInfo", json=jira_load("server_info.json"))
        http.get(f"{JIRA_API}/field", json=jira_load("fields.json"))
        http.get(f"{JIRA_API}/myself", json=jira_load("myself.json"))
        http.get(f"{JIRA_API}/search/jql", json=search_page(*issues, atlassian))
        bulk_serves(http, *issues, atlassian)  # the changed issues, read in full
        connector = make()
        engine = engine_for(tmp_path, "jira", connector)
        report = engine.run_cycle()
        record = connector.record(issues[0])
    with pytest.raises(MappingError):  # mapped, they would have been quarantined
        engine.mappings["jira"].to_model(record.data)
    with engine.store.transaction() as tx:
        [row] = engine.store.quarantined(tx)
    assert (report.ignored, report.quarantined, report.connector_errors) == (5, 1, [])
    assert row["remote_id"] == "ENG-30" and "fields.updated: expected a string, got a number" in row["reason"]
    assert "fields.comment: expected an object or null, got a list" in row["reason"]


SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs" / "azure-devops" / "examples"
if not SPECS.is_dir():
    SPECS = Path("/work/shared/specs/azure-devops/examples")


def recorded_work_items() -> list[dict]:
    """Every work item of Microsoft's recorded answers (workItems, workItemsBatch)."""
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if {"id", "rev", "fields", "url"} <= set(node) and isinstance(node["fields"], dict):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    for folder in ("workItems", "workItemsBatch"):
        for path in sorted((SPECS / folder).glob("*.json")):
            walk(json.loads(path.read_text(encoding="utf-8-sig"))["responses"])
    return found


def test_microsofts_recorded_work_items_of_other_types_are_ignored_not_quarantined(tmp_path, monkeypatch):
    from connectors.azure_devops import AzureDevOpsConfig, AzureDevOpsConnector
    from tests.test_connector_azure_devops import ORG, WIT, load as ado_load, wiql_result
    items = recorded_work_items()
    for number, item in enumerate(items):  # the recordings reuse ids: give each its own
        item["id"] = 1000 + number
        item["fields"].pop("System.History", None)
    kinds = {item["fields"].get("System.WorkItemType") for item in items}
    assert len(items) >= 70 and {"Bug", "Task", "Feature", None} <= kinds
    monkeypatch.setenv("AZURE_DEVOPS_PAT", "test-pat-value-0001")
    config = AzureDevOpsConfig(base_url=ORG, project="Support", mapping="azure_devops",
                               start_at="epoch", fetch_types=[], page_size=200, max_attempts=1)
    connector = AzureDevOpsConnector("azure_devops", config)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as http:
        http.add(responses.OPTIONS, f"{ORG}/_apis", json=ado_load("options.json"))
        http.add(responses.GET, re.compile(rf"{re.escape(WIT)}/workitemtypes/[^/]+/states.*"),
                 json=ado_load("states.json"))
        http.add(responses.POST, f"{WIT}/wiql", json=wiql_result([i["id"] for i in items]))
        http.add(responses.POST, f"{WIT}/workitemsbatch", json={"count": len(items), "value": items})
        engine = engine_for(tmp_path, "azure_devops", connector)
        report = engine.run_cycle()
        comment_reads = [c for c in http.calls if "/comments" in c.request.url]
    assert (report.pulled, report.ignored, report.quarantined, report.connector_errors) == (
        len(items), len(items), 0, [])
    assert comment_reads == []  # nothing there matters: no comments read


def test_a_connector_bug_stops_its_own_pull_not_the_cycle(tmp_path):
    from connectors.memory import MemoryConnector
    from tests.engine_helpers import make_engine, partner_ticket

    class Broken(MemoryConnector):
        def fetch_changes(self, cursor):
            raise AttributeError("'list' object has no attribute 'get'")
            yield  # a generator, as every connector's feed is

    trackers = {"azure_devops": Broken("azure_devops"), "zendesk": MemoryConnector("zendesk")}
    trackers["zendesk"].put(partner_ticket())
    engine, _ = make_engine(tmp_path / "t.db", trackers=trackers)
    report = engine.run_cycle()
    assert report.opened == 1  # zendesk's feed was read after the broken one
    [error] = report.connector_errors
    assert error.startswith("azure_devops: [azure_devops] unexpected AttributeError while reading")
    assert report.exit_code == 2


def test_a_tracker_failure_while_building_a_record_is_not_the_records_fault():
    from connectors.records import build_each
    from core.errors import Retryable

    def build(raw):
        if raw["id"] == 2:
            raise Retryable("HTTP 503 reading the work item type's states", tracker="azure_devops")
        return raw["id"]

    with pytest.raises(Retryable):  # the pull stops and is resumed; nothing is quarantined
        build_each("azure_devops", [{"id": 1}, {"id": 2}], build, ident=lambda r: (r["id"], None))
    built, unreadable = build_each("azure_devops", [{"id": 1}, {"id": "x"}],
                                   lambda raw: raw["id"] + 1, ident=lambda r: (r["id"], None))
    assert built == [2] and unreadable[0].id == "x" and "TypeError" in unreadable[0].reason
