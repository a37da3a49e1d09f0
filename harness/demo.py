"""`tiersync demo`: the escalation of the seeds, played through the three simulated trackers.

A partner's Zendesk ticket with an SR number is escalated by tier 1; tiersync creates the tier 2
engagement item in Azure DevOps and the engineering issue in Jira; tier 2 moves it to actively
working, waits on the publisher, proposes a solution; tier 1 closes it. tiersync runs a real sync
cycle (real connectors, real HTTP) after every step, and the demo prints what each tracker holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from simulators.profile import Profile
from harness.sandbox import Sandbox

SR = "12345678910123"
# the realistic simulators with their vendor time windows at 1/500 (Zendesk's one-minute export
# hold-back is 0.12 s), so that the whole scenario plays in a few seconds
DEMO_TIME_SCALE = 0.002
PARTNER = {"name": "Pat Partner", "email": "pat@contoso-partner.example.com"}
# Zendesk custom field ids of the shipped mapping (mappings/zendesk.yaml)
CF = {"sr": 360010000001, "severity": 360010000002, "plan": 360010000003, "engagement": 360010000004,
      "offer_type": 360010000005, "offer_ids": 360010000006, "seller": 360010000008,
      "scope": 360010000014, "contact_name": 360010000017, "contact_email": 360010000018}


@dataclass
class Step:
    title: str
    act: Callable[["Scenario"], None]


class Scenario:
    """The people's actions; ids of the records tiersync created are looked up as a person would."""

    def __init__(self, box: Sandbox):
        self.box = box
        self.people = box.people
        self.ticket_id: int | None = None

    def item_id(self) -> int:
        items = self.box.snapshot()["azure_devops"]["work_items"]
        return next(w["id"] for w in items if SR in (w["title"] or ""))

    def issue_key(self) -> str:
        issues = self.box.snapshot()["jira"]["issues"]
        return next(i["key"] for i in issues if SR in (i["summary"] or ""))

    # -- the steps ------------------------------------------------------------------------------
    def partner_writes_in(self) -> None:
        self.ticket_id = self.people.zendesk.create_ticket(
            subject=f"{SR} - SAS web address doesn't work",
            description=("Our customer's SAS URL returns 403 since this morning.\n"
                         "Server: web01.contoso.example, external IP 203.0.113.7\n"
                         "Root/Admin Password: Hunter2!root (please rotate after use)"),
            requester=PARTNER, priority="high",
            custom_fields={CF["sr"]: SR, CF["severity"]: "sev_2", CF["plan"]: "plan_enterprise",
                           CF["engagement"]: "Technical", CF["offer_type"]: "Azure Application Offer",
                           CF["offer_ids"]: "contoso-sas-gateway", CF["seller"]: "SELLER-4711",
                           CF["scope"]: "scope_cloud", CF["contact_name"]: "Ana Souza",
                           CF["contact_email"]: "ana.souza@contoso.example"})

    def tier1_escalates(self) -> None:
        self.people.zendesk.comment(
            self.ticket_id, "Reproduced; escalating to tier 2 and engineering.", public=False,
            tags=["escalate_tier2", "escalation_recommended"], assignee_email="alice.agent@tier1.example.com")

    def tier2_starts(self) -> None:
        self.people.azure_devops.set_state(self.item_id(), "Actively Working",
                                           "Picked up by tier 2; looking at the SAS policy.")

    def tier2_waits_on_publisher(self) -> None:
        self.people.azure_devops.set_state(self.item_id(), "Waiting on Publisher",
                                           "Please send the storage account's access logs.")

    def partner_replies(self) -> None:
        self.people.zendesk.comment(self.ticket_id, "Access logs attached (storage-logs.zip).",
                                    public=True)
        self.people.azure_devops.set_state(self.item_id(), "Actively Working")

    def engineering_comments(self) -> None:
        self.people.jira.comment(self.issue_key(), "The SAS expiry is computed in local time; "
                                                   "fix deployed to the gateway.")

    def tier2_proposes_solution(self) -> None:
        self.people.azure_devops.set_state(self.item_id(), "Solution Proposed",
                                           "Gateway fixed; please regenerate the SAS and retry.")

    def tier1_closes(self) -> None:
        self.people.zendesk.comment(self.ticket_id, "Confirmed working by the customer. Closing.",
                                    public=True, status="solved")


STEPS = [
    Step("A partner writes in: Zendesk ticket with an SR number", Scenario.partner_writes_in),
    Step("Tier 1 escalates it (tags escalate_tier2 + escalation_recommended)", Scenario.tier1_escalates),
    Step("Tier 2 moves the engagement item to Actively Working (the SLA starts)", Scenario.tier2_starts),
    Step("Tier 2 waits on the publisher", Scenario.tier2_waits_on_publisher),
    Step("The partner replies in Zendesk; tier 2 works on", Scenario.partner_replies),
    Step("Engineering comments in Jira", Scenario.engineering_comments),
    Step("Tier 2 proposes a solution", Scenario.tier2_proposes_solution),
    Step("Tier 1 solves the ticket in Zendesk", Scenario.tier1_closes),
]


def run_demo(workdir: Path, console: Console, store_url: str | None = None) -> int:
    with Sandbox(workdir, store_url=store_url, profile=Profile(time_scale=DEMO_TIME_SCALE)) as box:
        scenario = Scenario(box)
        worst = 0
        for number, step in enumerate(STEPS, 1):
            step.act(scenario)
            report = box.cycle()
            worst = max(worst, report.exit_code)
            console.rule(f"[bold]{number}. {step.title}")
            console.print(f"tiersync cycle: opened={report.opened} changed={report.changed} "
                          f"actions={report.actions_done} quarantined={report.quarantined} "
                          f"errors={len(report.connector_errors)}", markup=False)
            print_trackers(console, box.snapshot(), scenario.ticket_id)
        box.clear_requests()
        report = box.cycle()
        writes = sum(box.write_requests().values())
        console.rule("[bold]One more cycle with no change anywhere")
        console.print(f"write requests sent to the trackers: {writes}")
        worst = max(worst, report.exit_code)
    console.rule("[bold]Where to look")
    console.print(f"store and audit log: {box.store_url}", markup=False)
    console.print(f"configuration used:  {box.config_path}", markup=False)
    console.print(f"  tiersync audit --config {box.config_path}", markup=False)
    console.print(f"  tiersync audit --verify --config {box.config_path}", markup=False)
    return worst


def print_trackers(console: Console, snap: dict[str, Any], ticket_id: int | None) -> None:
    """One line per record of the scenario in each tracker, with its latest comment."""
    for t in snap["zendesk"]["tickets"]:
        if t["id"] != ticket_id:
            continue
        cf = t["custom_fields"]
        _line(console, f"Zendesk #{t['id']}", t["status"],
              [f"assignee {t['assignee'] or '-'}", f"tier {cf.get('360010000010', '-')}",
               f"queue {cf.get('360010000016', '-')}", f"ack due {cf.get('360010000011', '-')}"],
              [c["body"] for c in t["comments"]])
    for w in snap["azure_devops"]["work_items"]:
        if SR not in (w["title"] or ""):
            continue
        f = w["fields"]
        _line(console, f"Azure DevOps #{w['id']}", w["state"],
              [f"area {f.get('System.AreaPath', '-')}", f"tier {f.get('Custom.SupportTier', '-')}",
               f"ack due {f.get('Custom.AcknowledgementDue', '-')} on time "
               f"{f.get('Custom.AcknowledgedOnTime', '-')}",
               f"solution due {f.get('Custom.SolutionDue', '-')} on time "
               f"{f.get('Custom.SolutionProvidedOnTime', '-')}"],
              [c["text"] for c in w["comments"]])
    for i in snap["jira"]["issues"]:
        if SR not in (i["summary"] or ""):
            continue
        _line(console, f"Jira {i['key']}", i["status"], [f"project {i['project']}"],
              [c["body"] for c in i["comments"]])


def _line(console: Console, record: str, state: str, details: list[str], comments: list[str]) -> None:
    console.print(f"  {record:18} {state:20} " + " | ".join(details), markup=False)
    if comments:
        last = " ".join(comments[-1].split())
        console.print(f"  {'':18} {len(comments)} comment(s), latest: {last[:110]}", markup=False)
