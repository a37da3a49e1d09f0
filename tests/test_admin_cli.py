"""Issue 10 items 2-4 and 6 through the command line, over the simulators: exit codes that keep
telling, quarantine retry, reconcile, link and backfill."""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from typer.testing import CliRunner

from harness.demo import CF, SR, STEPS, Scenario
from harness.sandbox import Sandbox
from sync import app
from tests.test_admin_replay import ADO_SEVERITY, fail_next_ado_update

pytestmark = pytest.mark.e2e
runner = CliRunner()


def tiersync(box: Sandbox, *args: str):
    box.stop_store()  # the command is its own process: the sandbox's engine lets go of the store
    box.settle()  # the trackers' feeds show every change made so far (as box.cycle() waits)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return runner.invoke(app, [*args, "--config", str(box.config_path)])
    finally:  # the command pointed logging at the runner's stream, closed now
        root.handlers[:], root.level = handlers, level


def edit_config(box: Sandbox, change) -> None:
    config = yaml.safe_load(box.config_path.read_text())
    change(config)
    box.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def escalate(box: Sandbox) -> Scenario:
    scenario = Scenario(box)
    for step in STEPS[:3]:
        step.act(scenario)
        box.cycle()
    return scenario


def ado_item(box: Sandbox) -> dict:
    [item] = [w for w in box.snapshot()["azure_devops"]["work_items"] if SR in (w["title"] or "")]
    return item


def set_severity(box: Sandbox, scenario: Scenario, value: str) -> None:
    box.people.zendesk.update(scenario.ticket_id, custom_fields=[{"id": CF["severity"], "value": value}])


# -- exit codes ------------------------------------------------------------------------------------
def test_exit_code_stays_1_across_runs_while_a_dead_letter_remains(tmp_path):
    with Sandbox(tmp_path) as box:
        scenario = escalate(box)
        fail_next_ado_update(box)
        set_severity(box, scenario, "sev_3")
        codes = [tiersync(box, "run", "--once").exit_code for _ in range(3)]
        assert codes == [1, 1, 1], "the runs after the one that dead-lettered must still exit 1"
        assert tiersync(box, "replay", "--all").exit_code == 0
        assert tiersync(box, "run", "--once").exit_code == 0
        assert ado_item(box)["fields"][ADO_SEVERITY] == "3 - Medium"


def test_actions_retrying_longer_than_configured_make_the_run_exit_1(tmp_path):
    with Sandbox(tmp_path, engine={"retry_alert_seconds": 0.001, "backoff_seconds": 0.001}) as box:
        scenario = escalate(box)
        edit_config(box, lambda c: c["trackers"]["azure_devops"].update(max_attempts=1))
        box.sims["azure_devops"].set_faults(fail_next=[
            {"path": r"/workitems/\d+$", "count": 3, "status": 503, "method": "PATCH"}])
        set_severity(box, scenario, "sev_3")
        result = tiersync(box, "run", "--once")
        assert result.exit_code == 1, result.output
        assert "retrying_too_long=1" in result.output
        assert "retry_alert_seconds" in tiersync(box, "run", "--help").output
        box.sims["azure_devops"].faults.fail_next.clear()
        assert tiersync(box, "run", "--once").exit_code == 0  # it went through: nothing retrying


# -- quarantine --------------------------------------------------------------------------------------
def _mapping_without_sev_4(box: Sandbox, tmp_path) -> str:
    source = box.load_config().mappings["zendesk"].source
    broken = tmp_path / "zendesk-broken.yaml"
    broken.write_text(open(source).read().replace("sev_4: 4", "sev_four: 4"))
    return str(source)


def test_quarantine_fixed_by_a_mapping_change_and_retry(tmp_path):
    with Sandbox(tmp_path) as box:
        good = _mapping_without_sev_4(box, tmp_path)
        edit_config(box, lambda c: c["trackers"]["zendesk"].update(mapping=str(tmp_path / "zendesk-broken.yaml")))
        scenario = Scenario(box)
        STEPS[0].act(scenario)
        box.people.zendesk.update(scenario.ticket_id, tags=["escalate_tier2"],
                                  custom_fields=[{"id": CF["severity"], "value": "sev_4"}])
        assert tiersync(box, "run", "--once").exit_code == 1
        [entry] = json.loads(tiersync(box, "quarantine", "--json").stdout)
        assert "sev_4" in entry["reason"]
        assert tiersync(box, "run", "--once").exit_code == 1, "still quarantined: still exit 1"
        # retried with the mapping still broken: still quarantined, exit 1
        still = tiersync(box, "quarantine", "--retry", "--all")
        assert still.exit_code == 1 and "still quarantined" in still.output and "sev_4" in still.output
        edit_config(box, lambda c: c["trackers"]["zendesk"].update(mapping=good))
        result = tiersync(box, "quarantine", "--retry", str(entry["id"]))
        assert result.exit_code == 0, result.output
        assert "cleared" in result.output
        assert json.loads(tiersync(box, "quarantine", "--json").stdout) == []
        assert tiersync(box, "run", "--once").exit_code == 0
        assert ado_item(box)["fields"][ADO_SEVERITY] == "4 - Low"


def test_a_quarantined_record_clears_itself_when_it_syncs(tmp_path):
    with Sandbox(tmp_path) as box:
        _mapping_without_sev_4(box, tmp_path)
        edit_config(box, lambda c: c["trackers"]["zendesk"].update(mapping=str(tmp_path / "zendesk-broken.yaml")))
        scenario = Scenario(box)
        STEPS[0].act(scenario)
        box.people.zendesk.update(scenario.ticket_id, tags=["escalate_tier2"],
                                  custom_fields=[{"id": CF["severity"], "value": "sev_4"}])
        assert tiersync(box, "run", "--once").exit_code == 1
        set_severity(box, scenario, "sev_3")  # tier 1 corrects the ticket
        assert tiersync(box, "run", "--once").exit_code == 0
        assert json.loads(tiersync(box, "quarantine", "--json").stdout) == []


# -- reconcile -----------------------------------------------------------------------------------------
def test_reconcile_reports_drift_and_fix_repairs_it(tmp_path):
    with Sandbox(tmp_path) as box:
        scenario = escalate(box)
        fail_next_ado_update(box)
        set_severity(box, scenario, "sev_3")
        box.cycle()  # the Azure DevOps update is dead-lettered: the item still says 2
        result = tiersync(box, "reconcile", "--json")
        assert result.exit_code == 1, result.output
        found = json.loads(result.stdout)["differences"]
        assert ("azure_devops", ADO_SEVERITY, "2 - High", "3 - Medium", "drift") in \
            {(d["tracker"], d["path"], d["record_value"], d["wanted"], d["kind"]) for d in found}
        # the SLA due dates the new severity moved were in the same lost update
        assert {(d["tracker"], d["kind"]) for d in found} == {("azure_devops", "drift")}
        assert tiersync(box, "reconcile", "--tracker", "jira").exit_code == 0
        box.clear_requests()
        assert tiersync(box, "reconcile").exit_code == 1, "reporting writes nothing"
        assert box.write_requests() == {"zendesk": 0, "azure_devops": 0, "jira": 0}
        result = tiersync(box, "reconcile", "--fix", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["remaining"] == []
        assert ado_item(box)["fields"][ADO_SEVERITY] == "3 - Medium"
        assert "no differences" in tiersync(box, "reconcile").output


def test_reconcile_fix_merges_a_change_not_yet_pulled(tmp_path):
    with Sandbox(tmp_path) as box:
        escalate(box)
        item = ado_item(box)
        box.people.azure_devops.set_state(item["id"], "Waiting on Publisher")
        found = json.loads(tiersync(box, "reconcile", "--json").stdout)["differences"]
        assert any(d["path"] == "System.State" and d["kind"] == "changed" for d in found)
        assert tiersync(box, "reconcile", "--fix").exit_code == 0
        [ticket] = [t for t in box.snapshot()["zendesk"]["tickets"] if SR in t["subject"]]
        assert ticket["status"] == "pending" and ado_item(box)["state"] == "Waiting on Publisher"


# -- link and backfill -------------------------------------------------------------------------------
def _hand_made_item(box: Sandbox, title: str) -> int:
    sim = box.sims["azure_devops"]
    people = box.people.azure_devops
    patch = [{"op": "add", "path": "/fields/System.Title", "value": title}]
    return people.call("POST", f"/{people.project}/_apis/wit/workitems/$Engagement%20Item?api-version=7.1",
                       json=patch, headers={"Content-Type": "application/json-patch+json"})["id"]


def test_link_connects_records_escalated_by_hand_and_refuses_conflicts(tmp_path):
    with Sandbox(tmp_path) as box:
        scenario = Scenario(box)
        STEPS[0].act(scenario)  # a ticket tier 1 escalated by hand, without tiersync's tag
        item_id = _hand_made_item(box, f"{SR} - SAS web address doesn't work")
        other_id = _hand_made_item(box, "99999999999999 - another case")
        result = tiersync(box, "link", f"zendesk:{scenario.ticket_id}", f"azure_devops:{item_id}")
        assert result.exit_code == 0, result.output
        assert "linked" in result.output
        again = tiersync(box, "link", f"zendesk:{scenario.ticket_id}", f"azure_devops:{other_id}")
        assert again.exit_code == 1 and f"azure_devops:{item_id}" in again.output
        missing = tiersync(box, "link", f"zendesk:{scenario.ticket_id}", "azure_devops:987654")
        assert missing.exit_code == 1 and "azure_devops:987654" in missing.output
        same = tiersync(box, "link", f"zendesk:{scenario.ticket_id}", f"azure_devops:{item_id}")
        assert same.exit_code == 0 and "already linked" in same.output
        before = len(box.snapshot()["azure_devops"]["work_items"])
        box.cycle()
        box.cycle()
        snap = box.snapshot()
        assert len(snap["azure_devops"]["work_items"]) == before, "a mirror was created for a linked case"
        item = next(w for w in snap["azure_devops"]["work_items"] if w["id"] == item_id)
        assert item["fields"].get("Custom.SRNumber") == SR, "the escalation's values were written"
        store = box.engine().store
        escalations = [s.escalation for batch in store.iter_escalations(open_only=False) for s in batch]
        linked = [e for e in escalations if e.link_for("azure_devops") and
                  e.link_for("azure_devops").remote_id == str(item_id)]
        assert len(linked) == 1 and linked[0].link_for("zendesk").remote_id == str(scenario.ticket_id)
        assert not any(e.link_for("azure_devops") and e.link_for("azure_devops").remote_id == str(other_id)
                       and e.link_for("zendesk") for e in escalations)


def test_backfill_brings_history_in_and_resumes(tmp_path):
    with Sandbox(tmp_path) as box:
        scenario = Scenario(box)
        for step in STEPS[:2]:
            step.act(scenario)
        time.sleep(1.1)  # Zendesk stamps whole seconds: tiersync goes live after the escalation
        live = datetime.now(timezone.utc).isoformat()
        edit_config(box, lambda c: c["trackers"]["zendesk"].update(start_at=live))
        assert tiersync(box, "run", "--once").exit_code == 0
        assert len(box.snapshot()["azure_devops"]["work_items"]) == 0, "history is not synced by a run"
        since = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
        result = tiersync(box, "backfill", "--since", since, "--tracker", "zendesk", "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["opened"] == 1 and summary["trackers"][0]["records"] >= 1
        assert tiersync(box, "run", "--once").exit_code == 0
        assert len([w for w in box.snapshot()["azure_devops"]["work_items"] if SR in w["title"]]) == 1
        again = json.loads(tiersync(box, "backfill", "--since", since, "--tracker", "zendesk", "--json").stdout)
        assert again["trackers"][0]["resumed"] is True and again["opened"] == 0
        assert tiersync(box, "backfill", "--since", since, "--tracker", "nope").exit_code == 2
