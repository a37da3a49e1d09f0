"""Issue 10 item 5, end to end over the simulators: a lost store, rebuilt or not, creates no
record in any tracker, never opens a mirror as an escalation, and converges."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.demo import SR, STEPS, Scenario
from harness.sandbox import Sandbox
from sync import app

pytestmark = pytest.mark.e2e
runner = CliRunner()


def counts(box: Sandbox) -> dict[str, int]:
    snap = box.snapshot()
    return {"zendesk": len(snap["zendesk"]["tickets"]), "azure_devops": len(snap["azure_devops"]["work_items"]),
            "jira": len(snap["jira"]["issues"])}


def comment_bodies(box: Sandbox) -> dict[str, list[str]]:
    snap = box.snapshot()
    [item] = [w for w in snap["azure_devops"]["work_items"] if SR in (w["title"] or "")]
    [issue] = [i for i in snap["jira"]["issues"] if SR in (i["summary"] or "")]
    [ticket] = [t for t in snap["zendesk"]["tickets"] if SR in (t["subject"] or "")]
    return {"zendesk": [c["body"] for c in ticket["comments"]],
            "azure_devops": [c["text"] for c in item["comments"]],
            "jira": [c["body"] for c in issue["comments"]]}


def lose_store(box: Sandbox) -> None:
    box.stop_store()
    path = Path(box.store_url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def escalations(box: Sandbox) -> list:
    store = box.engine().store
    return [s.escalation for batch in store.iter_escalations(open_only=False) for s in batch]


def assert_converged(box: Sandbox) -> None:
    """A cycle after this one writes nothing: every tracker agrees with the escalation."""
    box.cycle()
    box.clear_requests()
    report = box.cycle()
    assert box.write_requests() == {"zendesk": 0, "azure_devops": 0, "jira": 0}
    assert report.exit_code == 0, report


@pytest.mark.parametrize("rebuild_first", [False, True], ids=["plain-run", "rebuild-then-run"])
def test_store_deleted_mid_scenario_then_a_run_creates_nothing_and_converges(tmp_path, rebuild_first):
    with Sandbox(tmp_path) as box:
        scenario = Scenario(box)
        for step in STEPS[:4]:  # escalated, mirrored, actively working, waiting on the publisher
            step.act(scenario)
            box.cycle()
        [before] = escalations(box)
        records, comments = counts(box), comment_bodies(box)
        lose_store(box)
        if rebuild_first:
            box.clear_requests()
            box.settle()  # Zendesk's export holds back the last minute (scaled): tiersync's last writes
            result = runner.invoke(app, ["rebuild", "--json", "--config", str(box.config_path)])
            assert result.exit_code == 0, result.output
            summary = json.loads(result.stdout)
            assert summary["escalations"] == 1 and summary["links"] == 3 and summary["orphans"] == []
            assert box.write_requests() == {"zendesk": 0, "azure_devops": 0, "jira": 0}, "rebuild wrote"
            box.stop_store()
        box.cycle()
        assert counts(box) == records, "a record was created"
        [after] = escalations(box)
        assert after.id == before.id, "the escalation got its old id back"
        assert after.state.value == "waiting_on_customer" and after.severity == before.severity
        assert {(l.tracker, l.remote_id) for l in after.links} == \
            {(l.tracker, l.remote_id) for l in before.links}
        assert_converged(box)
        assert comment_bodies(box) == comments, "a comment was posted again"
        # the scenario goes on as if nothing happened
        for step in STEPS[4:]:
            step.act(scenario)
            box.cycle()
        assert counts(box) == records
        snap = box.snapshot()
        [item] = [w for w in snap["azure_devops"]["work_items"] if SR in (w["title"] or "")]
        assert item["state"] == "Closed"


def test_a_store_restored_from_an_old_backup_sends_nothing_stale(tmp_path):
    import shutil
    with Sandbox(tmp_path) as box:
        scenario = Scenario(box)
        for step in STEPS[:3]:
            step.act(scenario)
            box.cycle()
        box.stop_store()
        db = Path(box.store_url.removeprefix("sqlite:///"))
        backup = tmp_path / "backup.db"
        shutil.copy(db, backup)  # a consistent copy: the store is closed (WAL checkpointed)
        for step in STEPS[3:5]:  # waits on the publisher, the partner replies, working again
            step.act(scenario)
            box.cycle()
        box.people.zendesk.update(scenario.ticket_id,
                                  custom_fields=[{"id": 360010000002, "value": "sev_3"}])
        box.cycle()
        records, comments = counts(box), comment_bodies(box)
        lose_store(box)
        shutil.copy(backup, db)
        box.clear_requests()
        box.cycle()
        assert counts(box) == records
        snap = box.snapshot()
        [item] = [w for w in snap["azure_devops"]["work_items"] if SR in (w["title"] or "")]
        [ticket] = [t for t in snap["zendesk"]["tickets"] if t["id"] == scenario.ticket_id]
        assert item["state"] == "Actively Working" and ticket["status"] == "hold"
        assert item["fields"]["Microsoft.VSTS.Common.Severity"] == "3 - Medium"
        assert ticket["custom_fields"].get("360010000002", ticket["custom_fields"].get(360010000002)) == "sev_3"
        [after] = escalations(box)
        assert after.state.value == "actively_working" and after.severity == 3
        assert_converged(box)
        assert comment_bodies(box) == comments, "a comment was posted again"
