"""Issue 10 item 1, end to end over the simulators: a replay (or a late retry) never writes a
stale value, and a record holding a value other than the escalation's is drift, repaired."""
from __future__ import annotations

import pytest

from harness.demo import CF, SR, STEPS, Scenario
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e

ADO_SEVERITY = "Microsoft.VSTS.Common.Severity"


def severities(box: Sandbox, ticket_id: int) -> tuple[str, str, str]:
    snap = box.snapshot()
    ticket = next(t for t in snap["zendesk"]["tickets"] if t["id"] == ticket_id)
    [item] = [w for w in snap["azure_devops"]["work_items"] if SR in (w["title"] or "")]
    [issue] = [i for i in snap["jira"]["issues"] if SR in (i["summary"] or "")]
    jira_sev = issue["fields"].get("customfield_10101")
    return (ticket["custom_fields"][str(CF["severity"])] if str(CF["severity"]) in ticket["custom_fields"]
            else ticket["custom_fields"].get(CF["severity"]), item["fields"][ADO_SEVERITY], jira_sev)


def fail_next_ado_update(box: Sandbox) -> None:
    """Azure DevOps refuses the next work item update with a 400: the action is dead-lettered."""
    box.sims["azure_devops"].set_faults(fail_next=[
        {"path": r"/workitems/\d+$", "count": 1, "status": 400, "method": "PATCH"}])


def test_replay_after_the_state_moved_on_writes_todays_values(tmp_path):
    with Sandbox(tmp_path) as box:
        scenario = Scenario(box)
        for step in STEPS[:3]:
            step.act(scenario)
            box.cycle()
        zendesk = box.people.zendesk
        for severity in ("sev_3", "sev_4"):
            fail_next_ado_update(box)
            zendesk.update(scenario.ticket_id, custom_fields=[{"id": CF["severity"], "value": severity}])
            report = box.cycle()
            assert report.actions_dead == 1, report
        zendesk.update(scenario.ticket_id, custom_fields=[{"id": CF["severity"], "value": "sev_2"}])
        box.cycle()
        engine = box.engine()
        with engine.store.transaction() as tx:
            assert engine.store.replay(tx, None, engine.clock()) == 2
        box.cycle()
        box.cycle()
        zd, ado, jira = severities(box, scenario.ticket_id)
        assert (zd, ado) == ("sev_2", "2 - High")
        assert jira in ("Sev 2", {"value": "Sev 2"}) or (isinstance(jira, dict) and jira.get("value") == "Sev 2")
        with engine.store.transaction() as tx:
            [stored] = [s for batch in engine.store.iter_escalations() for s in batch]
        assert stored.escalation.severity == 2
