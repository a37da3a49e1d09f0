"""Each shipped mapping in both directions on payloads shaped like the vendors' documented
responses (tests/fixtures/<tracker>/, taken from ../shared/specs examples), through each
connector's own flat view and write-body builders."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from connectors import azure_devops_view as ado_view
from connectors import jira_view
from connectors import zendesk_view
from core.mapping import load_mapping
from core.model import Escalation, SlaMetric, SlaMetricName, State

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def load(tracker: str, name: str):
    return json.loads((FIXTURES / tracker / name).read_text())


def test_zendesk_export_ticket_to_model_and_back_to_a_ticket_body():
    page = load("zendesk", "export_page1.json")
    users = {u["id"]: u for u in page["users"]}
    orgs = {o["id"]: o for o in page["organizations"]}
    ticket = page["tickets"][0]
    mapping = load_mapping(ROOT / "mappings" / "zendesk.yaml")
    model = mapping.to_model(zendesk_view.flatten(ticket, users, orgs))
    assert model["title"] == "Portal down" and model["sr_number"] == "12345678901234"
    assert model["severity"] == 2 and model["state"] == "waiting_on_internal"
    assert model["customer_priority"] == "high"
    esc = Escalation(**model)
    due = datetime(2026, 3, 3, 17, tzinfo=timezone.utc)
    esc = esc.model_copy(update={"state": State.ACTIVELY_WORKING, "sla": {
        SlaMetricName.ACKNOWLEDGEMENT: SlaMetric(due_at=due)}})
    body, ignored = zendesk_view.write_payload(mapping.to_tracker(esc), creating=False)
    assert body["status"] == "hold"  # actively working at tier 2 shows as on-hold in Zendesk
    custom = {c["id"]: c["value"] for c in body["custom_fields"]}
    assert custom[360010000011] == "2026-03-03T17:00:00Z"
    assert custom[360010000002] == "sev_2"
    assert "subject" in body and body["subject"] == "12345678901234 - Portal down"


def test_jira_issue_to_model_and_back_to_an_edit_body():
    issue = load("jira", "issue.json")
    catalog = jira_view.FieldCatalog.from_fields(load("jira", "fields.json"))
    mapping = load_mapping(ROOT / "mappings" / "jira.yaml")
    flat = jira_view.flat_view(issue["fields"], catalog)
    model = mapping.to_model(flat)
    assert model["sr_number"] == "12345678901234" and model["severity"] == 2
    assert model["state"] in {s.value for s in State}
    esc = Escalation(**{**model, "customer_priority": "urgent", "partner_name": "Contoso"})
    fields = jira_view.api_fields(mapping.to_tracker(esc), catalog, lambda ref: {"accountId": ref})
    assert fields["customfield_10101"] == {"value": "Sev 2"}
    assert fields["priority"] == {"name": "Highest"}
    assert fields["summary"] == "12345678901234 - Portal down"
    assert fields["customfield_10103"] == "Contoso"


def test_azure_devops_work_item_to_model_and_back_to_a_json_patch():
    item = load("azure_devops", "work_item.json")
    states = {s["name"]: s["category"] for s in load("azure_devops", "states.json")["value"]}
    mapping = load_mapping(ROOT / "mappings" / "azure_devops.yaml")
    flat = ado_view.flatten(item["fields"], states, ["System.Description"])
    model = mapping.to_model(flat)
    assert model["sr_number"] == "123456789012345"
    assert model["title"] == "SAS web address doesn't work"
    assert model["state"] == "new" and model["top_partner"] is True
    assert model["assignee"] == "tier2.agent@fabrikam.example"
    esc = Escalation(**{**model, "state": "solution_proposed", "offer_ids": ["a", "b"]})
    ops = ado_view.patch_ops(mapping.to_tracker(esc), ["System.Description"])
    by_path = {op.path: op.value for op in ops if op.op == "add"}
    assert by_path["/fields/System.State"] == "Solution Proposed"
    assert by_path["/fields/System.Title"] == "123456789012345 - SAS web address doesn't work"
    assert by_path["/fields/Custom.OfferIds"] == "a, b"
    assert by_path["/fields/Microsoft.VSTS.Common.Severity"] == "2 - High"
