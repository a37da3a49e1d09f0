"""End to end over the simulators (issue 15): people by address across trackers.

A tier 2 engineer assigned in Azure DevOps becomes their Jira account (their address is hidden
in Jira: the configuration's override table names the account); "solution proposed" gives the
case back to the Zendesk agent who escalated it, as their Azure DevOps identity and their Jira
account (found by address); someone Jira does not know, or knows as deactivated, leaves the Jira
assignee unset with one internal note naming them, and nothing is quarantined."""
from __future__ import annotations

import pytest

from harness.sandbox import Sandbox
from tests.e2e_files_helpers import OWNER, configure, cycle, issue, item, open_case

pytestmark = pytest.mark.e2e

ENGINEER = "tier2.agent@fabrikam.example"
HIDDEN_ACCOUNT = "712020:0a1b2c3d-0000-4000-8000-0000000000aa"
ALICE_ACCOUNT = "712020:0a1b2c3d-0000-4000-8000-000000000011"


def jira_users(box: Sandbox, *users: dict) -> None:
    with box.sims["jira"].lock:
        box.sims["jira"].site.users.extend(users)


def ado_users(box: Sandbox, *addresses: str) -> None:
    with box.sims["azure_devops"].lock:
        for address in addresses:
            box.sims["azure_devops"].store.add_user({"uniqueName": address,
                                                     "displayName": address.split("@")[0]})


def assign_in_ado(box: Sandbox, who: str, state: str | None = None) -> None:
    fields = {"System.AssignedTo": who, **({"System.State": state} if state else {})}
    box.people.azure_devops.update(item(box).id, fields)
    cycle(box)
    cycle(box)


def notes_naming(box: Sandbox, address: str) -> list[str]:
    return [c["body"] for c in issue(box).comments if address in c["body"]]


def test_agent_becomes_jira_account_and_ado_identity_and_back_on_solution_proposed(tmp_path):
    with Sandbox(tmp_path) as box:
        jira_users(box, {"accountId": HIDDEN_ACCOUNT, "emailAddress": ENGINEER,
                         "displayName": "Tier2 Agent", "hide_email": True})
        configure(box, "jira", people={ENGINEER: HIDDEN_ACCOUNT})
        open_case(box)
        assign_in_ado(box, ENGINEER, "Actively Working")
        assert issue(box).values["assignee"] == HIDDEN_ACCOUNT  # the hidden-email user
        assign_in_ado(box, ENGINEER, "Solution Proposed")
        assert item(box).current.fields["System.AssignedTo"]["uniqueName"] == OWNER
        assert issue(box).values["assignee"] == ALICE_ACCOUNT  # found by address
        assert notes_naming(box, ENGINEER) == [] and notes_naming(box, OWNER) == []
        with box.engine().store.transaction() as tx:
            link = box.engine().store.links_for(tx, "jira", [str(issue(box).id)])[str(issue(box).id)]
            escalation = box.engine().store.get_escalation(tx, link.escalation_id).escalation
        assert (escalation.assignee, escalation.original_owner) == (OWNER, OWNER)
        assert escalation.solution_proposed_by == ENGINEER


def test_unknown_and_deactivated_people_leave_the_field_unset_with_one_note(tmp_path):
    newbie, gone = "newbie@fabrikam.example", "gone@fabrikam.example"
    with Sandbox(tmp_path) as box:
        ado_users(box, newbie, gone)
        jira_users(box, {"accountId": "712020:gone", "emailAddress": gone,
                         "displayName": "Gone", "active": False})
        open_case(box)
        assign_in_ado(box, newbie, "Actively Working")
        assert issue(box).values["assignee"] is None
        [note] = notes_naming(box, newbie)
        assert "is not a jira user" in note and "trackers.jira.people" in note
        assign_in_ado(box, gone)
        [note] = notes_naming(box, gone)
        assert "is deactivated in jira" in note and issue(box).values["assignee"] is None
        box.people.azure_devops.update(item(box).id, {"System.Title": "12345678910123 - SAS down"})
        cycle(box)
        cycle(box)
        assert len(notes_naming(box, gone)) == 1  # never twice for one record and person
        report = cycle(box)
        assert report.quarantined == 0 and report.quarantine_open == 0
