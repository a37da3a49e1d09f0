"""The chaos bench's scenario: N escalations and what the people do to them, phase by phase.

Everything here is a pure function of the seed, so the fault-free reference run and the chaos
run see exactly the same human actions. People act through the simulators' Python helpers (as
someone clicking in the tracker's UI would), never through tiersync, and never subject to the
injected faults.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from harness.sandbox import Sandbox

# Zendesk custom field ids of the shipped mapping (mappings/zendesk.yaml)
CF = {"sr": 360010000001, "severity": 360010000002, "plan": 360010000003, "engagement": 360010000004,
      "offer_type": 360010000005, "offer_ids": 360010000006, "seller": 360010000008,
      "scope": 360010000014, "contact_name": 360010000017, "contact_email": 360010000018}
REQUESTERS = [{"name": "Pat Partner", "email": "pat@contoso-partner.example.com"},
              {"name": "Rita Reseller", "email": "rita@fabrikam.example.com"}]
TIER1 = ["alice.agent@tier1.example.com", "bob.agent@tier1.example.com"]
ENGINEER = "dana.okafor@engineering.example.com"
TOPICS = ["SAS web address doesn't work", "Offer listing stuck in review", "Billing meter not emitted",
          "Private plan invisible to customer", "Webhook returns 500", "Lead export is empty"]


@dataclass(frozen=True)
class Case:
    """One escalation of the scenario and the people's choices for it."""

    index: int
    sr: str
    title: str
    requester: dict[str, str]
    agent: str
    severity: int  # 2..4 (Sev1 would page the 24x7 NOC and use 15-minute SLAs)
    plan: str
    engagement: str
    engineering: bool  # tagged escalation_recommended: a Jira mirror too
    rejected: bool  # the developer plan is not entitled: validation closes it
    tier1_comment: bool
    engineering_comment: bool
    waits_on_publisher: bool
    tier1_solves: bool
    contact_race: bool  # contact name edited on Azure DevOps, then on Zendesk (Zendesk is later)
    severity_race: bool  # Azure DevOps changes the Zendesk-owned severity: it must be written back
    severity_change: bool  # Zendesk (the owner) raises the severity by one

    @property
    def open(self) -> bool:
        return not self.rejected


def make_cases(count: int, seed: int) -> list[Case]:
    cases = []
    for index in range(count):
        rng = random.Random(f"{seed}:{index}")
        engineering = rng.random() < 0.25
        rejected = rng.random() < 0.05
        severity = rng.choice([2, 3, 3, 4])
        cases.append(Case(
            index=index, sr=f"{seed % 1000:03d}{index:011d}",
            title=f"{rng.choice(TOPICS)} (case {index})", requester=rng.choice(REQUESTERS),
            agent=rng.choice(TIER1), severity=severity,
            plan="plan_developer" if rejected else rng.choice(["plan_professional", "plan_enterprise"]),
            engagement=rng.choice(["Technical", "Publishing"]), engineering=engineering,
            rejected=rejected, tier1_comment=rng.random() < 0.5,
            engineering_comment=engineering and rng.random() < 0.7,
            waits_on_publisher=rng.random() < 0.4, tier1_solves=rng.random() < 0.6,
            contact_race=rng.random() < 0.1, severity_race=rng.random() < 0.05,
            severity_change=severity > 2 and rng.random() < 0.05))
    return cases


class People:
    """The humans of the scenario, acting on one sandbox's simulators."""

    def __init__(self, box: Sandbox, cases: list[Case]):
        self.zendesk = box.sims["zendesk"]
        self.ado = box.sims["azure_devops"]
        self.jira = box.sims["jira"]
        self.cases = cases
        self.tickets: dict[str, int] = {}

    # -- finding the records tiersync made, as a person would (by SR number) -------------------
    def ado_items(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        with self.ado.lock:
            for item in self.ado.store.items.values():
                sr = item.current.fields.get("Custom.SRNumber")
                if sr:
                    out.setdefault(str(sr), []).append(item.id)
        return out

    def jira_issues(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.jira.lock:
            for issue in self.jira.store.issues.values():
                sr = issue.values.get("customfield_10100")
                if sr:
                    out.setdefault(str(sr), []).append(issue.key)
        return out

    def ticket_status(self) -> dict[str, str]:
        with self.zendesk.lock:
            return {sr: self.zendesk.state.tickets[tid].data["status"] for sr, tid in self.tickets.items()}

    # -- phase actions --------------------------------------------------------------------------
    def intake(self) -> None:
        for case in self.cases:
            tags = ["escalate_tier2"] + (["escalation_recommended"] if case.engineering else [])
            ticket = {
                "subject": f"{case.sr} - {case.title}", "requester": case.requester,
                "description": f"Partner report for SR {case.sr}: {case.title}. Steps attached.",
                "priority": "high" if case.severity == 2 else "normal", "tags": tags,
                "assignee_email": case.agent,
                "custom_fields": {CF["sr"]: case.sr, CF["severity"]: f"sev_{case.severity}",
                                  CF["plan"]: case.plan, CF["engagement"]: case.engagement,
                                  CF["offer_type"]: "Azure Application Offer",
                                  CF["offer_ids"]: f"offer-{case.index}", CF["seller"]: f"SELLER-{case.index}",
                                  CF["scope"]: "scope_cloud", CF["contact_name"]: f"Contact {case.index}",
                                  CF["contact_email"]: f"contact{case.index}@customer.example"}}
            self.tickets[case.sr] = self.zendesk.create_ticket(ticket, author_email=case.agent)

    def tier2_picks_up(self) -> None:
        items = self.ado_items()
        for case in self._open(items):
            self.ado.human_edit(items[case.sr][0], {
                "System.State": "Actively Working",
                "System.History": f"Picked up by tier 2; reproducing SR {case.sr}."})

    def comments_and_races(self) -> None:
        items, issues = self.ado_items(), self.jira_issues()
        for case in self._open(items):
            item = items[case.sr][0]
            if case.tier1_comment:
                self.zendesk.edit_ticket(self.tickets[case.sr], {}, public=True, author_email=case.agent,
                                         comment=f"Customer confirms the issue on SR {case.sr} still happens.")
            if case.engineering_comment and case.sr in issues:
                self.jira.human_comment(issues[case.sr][0], f"Engineering: root cause of {case.sr} "
                                        "found in the gateway.", author=ENGINEER)
            if case.contact_race:
                self.ado.human_edit(item, {"Custom.PartnerContactName": f"ADO contact {case.index}"})
            if case.severity_race:
                self.ado.human_edit(item, {"Microsoft.VSTS.Common.Severity": "4 - Low"
                                           if case.severity != 4 else "3 - Medium"})
        time.sleep(1.2)  # Zendesk's edits below are clearly later than Azure DevOps' above
        for case in self._open(items):
            fields: dict[str, Any] = {}
            if case.contact_race:
                fields[f"custom_fields.{CF['contact_name']}"] = f"Zendesk contact {case.index}"
            if case.severity_change:
                fields[f"custom_fields.{CF['severity']}"] = f"sev_{case.severity - 1}"
            if fields:
                self.zendesk.edit_ticket(self.tickets[case.sr], fields, author_email=case.agent)

    def tier2_waits(self) -> None:
        items = self.ado_items()
        for case in self._open(items):
            if case.waits_on_publisher:
                self.ado.human_edit(items[case.sr][0], {
                    "System.State": "Waiting on Publisher",
                    "System.History": f"Please send the access logs for SR {case.sr}."})

    def tier2_proposes(self) -> None:
        items = self.ado_items()
        for case in self._open(items):
            self.ado.human_edit(items[case.sr][0], {
                "System.State": "Solution Proposed",
                "System.History": f"Fix for {case.sr}: regenerate the key and retry."})

    def tier1_closes(self) -> None:
        for case in self.cases:
            if case.open and case.tier1_solves:
                self.zendesk.edit_ticket(self.tickets[case.sr], {"status": "solved"}, public=True,
                                         author_email=case.agent,
                                         comment=f"Confirmed working by the customer ({case.sr}). Closing.")

    def _open(self, items: dict[str, list[int]]) -> list[Case]:
        """Open cases whose tier 2 item exists (a missing one is reported by the measurement)."""
        return [c for c in self.cases if c.open and c.sr in items]

    # -- what must be true once tiersync caught up with a phase (besides a quiet store) ---------
    def mirrors_exist(self) -> bool:
        items, issues = self.ado_items(), self.jira_issues()
        return all(c.sr in items and (not c.engineering or c.sr in issues)
                   for c in self.cases if c.open)

    def tickets_in(self, status: str, which: Callable[[Case], bool]) -> bool:
        current = self.ticket_status()
        return all(current.get(c.sr) == status for c in self.cases if c.open and which(c))


@dataclass(frozen=True)
class Phase:
    name: str
    act: Callable[[People], None]
    done: Callable[[People], bool]


PHASES = [
    Phase("intake: tier 1 escalates Zendesk tickets", People.intake, People.mirrors_exist),
    Phase("tier 2 moves items to Actively Working", People.tier2_picks_up,
          lambda p: p.tickets_in("hold", lambda c: True)),
    Phase("comments, engineering notes, concurrent edits", People.comments_and_races, lambda p: True),
    Phase("tier 2 waits on the publisher", People.tier2_waits,
          lambda p: p.tickets_in("pending", lambda c: c.waits_on_publisher)),
    Phase("tier 2 proposes solutions", People.tier2_proposes,
          lambda p: p.tickets_in("open", lambda c: True)),
    Phase("tier 1 solves tickets", People.tier1_closes,
          lambda p: p.tickets_in("solved", lambda c: c.tier1_solves)),
]
