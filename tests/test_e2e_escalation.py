"""End to end over the simulators (seed 002): a refused management escalation is asked again
and accepted, the level 2 audience with the account's CSM is notified in Zendesk and Jira, and
an Escalation Manager's reply meets the review clock. The Zendesk ticket was created 3 h before
the first request; Zendesk and tiersync then move on 2 h together (a controlled clock)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.audit import AuditLog
from harness.demo import CF, PARTNER, SR
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e

REQUEST = "custom_fields.360010000009"
CSM = "carla.csm@tier1.example.com"
MANAGER = "eve@escalations.tier1.example.com"
LEVEL_1 = ["sam.senior@tier1.example.com", "lee.lead@tier1.example.com",
           "mia.manager@tier1.example.com"]


class Clock:
    """Wall time plus an offset, shared by the Zendesk simulator and the engine."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def ticket_of(box: Sandbox, ticket_id: int) -> dict:
    return next(t for t in box.snapshot()["zendesk"]["tickets"] if t["id"] == ticket_id)


def issue_of(box: Sandbox) -> dict:
    return next(i for i in box.snapshot()["jira"]["issues"] if SR in (i["summary"] or ""))


def cycle(box: Sandbox, clock: Clock) -> None:
    report = box.cycle(clock=clock)
    assert report.connector_errors == [] and report.quarantined == 0 and report.actions_dead == 0


def open_case(box: Sandbox, clock: Clock) -> int:
    zendesk = box.sims["zendesk"]
    zendesk.clock = clock
    created = (clock() - timedelta(hours=3)).isoformat()
    ticket_id = zendesk.create_ticket({
        "subject": f"{SR} - SAS web address doesn't work", "created_at": created,
        "description": "Our customer's SAS URL returns 403 since this morning.",
        "requester": PARTNER, "priority": "high", "assignee_email": "alice.agent@tier1.example.com",
        "tags": ["escalate_tier2", "escalation_recommended"],
        "custom_fields": {CF["sr"]: SR, CF["severity"]: "sev_2", CF["plan"]: "plan_enterprise",
                          CF["engagement"]: "Technical", CF["offer_type"]: "Azure Application Offer",
                          CF["offer_ids"]: "contoso-sas-gateway", CF["seller"]: "SELLER-4711",
                          CF["scope"]: "scope_cloud", CF["contact_name"]: "Ana Souza",
                          CF["contact_email"]: "ana.souza@contoso.example"}},
        author_email=PARTNER["email"])
    cycle(box, clock)
    return ticket_id


def ask(box: Sandbox, ticket_id: int, level: int, clock: Clock) -> None:
    box.sims["zendesk"].edit_ticket(ticket_id, {REQUEST: f"esc_level_{level}"},
                                    comment=f"Please escalate to level {level}: customer event "
                                            f"tomorrow.", public=True, author_email=PARTNER["email"])
    cycle(box, clock)
    cycle(box, clock)  # notes and write-backs of the decision go out


def test_refused_request_asked_again_accepted_csm_notified_review_met(tmp_path):
    clock = Clock()
    with Sandbox(tmp_path) as box:
        ticket_id = open_case(box, clock)
        ask(box, ticket_id, 1, clock)  # the case is 3 h old: Sev2 premium needs 4 h
        ticket = ticket_of(box, ticket_id)
        assert ticket["custom_fields"]["360010000009"] == "esc_none"  # reset: ask again
        reply = [c for c in ticket["comments"] if c["public"] and "once it is 4 hours old" in c["body"]]
        assert len(reply) == 1

        clock.offset = timedelta(hours=2)  # now 5 h old
        ask(box, ticket_id, 1, clock)
        ticket = ticket_of(box, ticket_id)
        assert ticket["custom_fields"]["360010000020"] == 1 and ticket["followers"] == LEVEL_1
        assert ticket["custom_fields"]["360010000009"] == "esc_none"
        assert ticket["custom_fields"].get("360010000022"), "review due time written back"
        [item] = [w for w in box.snapshot()["azure_devops"]["work_items"] if SR in (w["title"] or "")]
        assert item["fields"]["Microsoft.VSTS.Common.StackRank"] == 8333  # high x Enterprise
        assert item["fields"].get("Custom.EscalationReviewDue")
        assert issue_of(box)["fields"]["customfield_10107"] == 8333

        clock.offset += timedelta(minutes=10)
        ask(box, ticket_id, 2, clock)
        ticket = ticket_of(box, ticket_id)
        assert ticket["custom_fields"]["360010000020"] == 2
        assert CSM in ticket["followers"] and "sid.director@tier1.example.com" in ticket["followers"]
        issue = issue_of(box)
        accounts = {u["email"]: u["accountId"] for u in box.snapshot()["jira"]["users"]}
        assert accounts[CSM] in issue["watchers"]
        level_2 = [c for c in issue["comments"] if "accepted: level 2" in c["body"]]
        assert len(level_2) == 1 and accounts[CSM] in level_2[0]["mentions"]
        ado = box.snapshot()["azure_devops"]
        csm_identity = ado["identities"][CSM]
        assert {"work_item": item["id"], "identity": csm_identity} in ado["notifications"]

        clock.offset += timedelta(minutes=30)
        box.sims["zendesk"].edit_ticket(ticket_id, {}, comment="Escalation accepted: an engineer "
                                        "joins the customer's event tomorrow.", public=True,
                                        author_email=MANAGER)
        cycle(box, clock)
        with box.engine().store.transaction() as tx:
            [item] = [i.escalation for b in box.engine().store.iter_escalations(open_only=True)
                      for i in b]
            entries = list(AuditLog().query(tx, escalation_id=item.id))
        assert item.review_level == 2 and item.review_met_by == MANAGER
        assert item.review_met_at <= item.review_due_at
        outcomes = [(a.outcome, a.rule) for a in item.escalation_history]
        assert outcomes == [("refused", "too_early"), ("accepted", "level_1"),
                            ("accepted", "level_2")]
        rules = " ".join(e["rule"] or "" for e in entries)
        assert "escalation.refused.too_early" in rules and "escalation.level_2" in rules
        assert "escalation.review.met" in rules
        refused = next(e for e in entries if "escalation.refused.too_early" in (e["rule"] or ""))
        assert "once it is 4 hours old" in str(refused["after"]["escalation_history"])
        met_notes = [c for c in ticket_of(box, ticket_id)["comments"]
                     if "review of level 2 met" in c["body"]]
        assert len(met_notes) == 1 and not met_notes[0]["public"]
        from typer.testing import CliRunner

        from sync import app
        shown = CliRunner().invoke(app, ["status", "--config", str(box.config_path)],
                                   terminal_width=250)
        assert shown.exit_code == 0, shown.output
        assert "L2 met" in shown.output and "8333" in shown.output
        assert "\\n" not in shown.output  # cells are split into lines, not escaped


def test_an_unregistered_sender_is_not_converted_and_listed(tmp_path):
    import json

    import yaml
    from typer.testing import CliRunner

    from sync import app
    from pathlib import Path
    shipped = Path(__file__).resolve().parents[1] / "mappings" / "policy.yaml"
    data = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    data["validation"]["entitlement"]["requesters"] = ["*@contoso-partner.example.com"]
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with Sandbox(tmp_path, policy="policy.yaml") as box:
        zendesk = box.sims["zendesk"]
        ticket_id = zendesk.create_ticket({
            "subject": f"{SR} - Portal down", "description": "Please help",
            "requester": {"name": "Someone", "email": "someone@gmail.example"},
            "tags": ["escalate_tier2"]})
        before = ticket_of(box, ticket_id)
        box.clear_requests()
        cycle(box, Clock())
        after = ticket_of(box, ticket_id)
        assert box.write_requests() == {"zendesk": 0, "azure_devops": 0, "jira": 0}
        assert after["comments"] == before["comments"] and after["updated_at"] == before["updated_at"]
        assert not [w for w in box.snapshot()["azure_devops"]["work_items"] if SR in (w["title"] or "")]
        result = CliRunner().invoke(app, ["status", "--not-converted", "--json",
                                          "--config", str(box.config_path)])
        assert result.exit_code == 0, result.output
        [row] = json.loads(result.output)
        assert row["record"] == f"zendesk:{ticket_id}" and row["requester"] == "someone@gmail.example"
        with box.engine().store.transaction() as tx:
            entries = list(AuditLog().query(tx))
        assert any(e["rule"] == "validation.not_converted" for e in entries)
        checked = CliRunner().invoke(app, ["check", "--config", str(box.config_path)])
        assert "requesters is empty" not in checked.output
