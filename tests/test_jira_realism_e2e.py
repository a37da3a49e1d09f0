"""End to end over the realistic Jira simulator (workflow not fully connected, Resolution required
on Resolve and Close, search index lag, moved issues, a service desk): the real connectors and
engine, over HTTP, as the demo's people act."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import yaml
from typer.testing import CliRunner

from core.mapping import resolve_mapping_path
from harness.demo import CF, PARTNER, SR, STEPS, Scenario
from harness.sandbox import Sandbox
from sync import app

pytestmark = pytest.mark.e2e


def jira_issues(box: Sandbox, sr: str = SR) -> list[dict]:
    return [i for i in box.snapshot()["jira"]["issues"] if i["fields"].get("customfield_10100") == sr]


def cycle_until(box: Sandbox, done, timeout: float = 15.0) -> None:
    """Run cycles until ``done()`` (Jira's search shows a change only after its index lag)."""
    deadline = time.monotonic() + timeout
    while True:
        report = box.cycle()
        assert report.connector_errors == [], report.connector_errors
        if done() or time.monotonic() > deadline:
            return
        time.sleep(0.3)


def play(box: Sandbox, scenario: Scenario, steps, after=None) -> None:
    for step in steps:
        step.act(scenario)
        report = box.cycle()
        assert report.connector_errors == [] and report.quarantined == 0, report.connector_errors
        if after is not None:
            after(step)


def transition_posts(box: Sandbox) -> list[dict]:
    return [r.body for r in box.sims["jira"].requests
            if r.method == "POST" and r.path.endswith("/transitions") and r.status == 204]


def test_done_needs_a_resolution_and_is_reached_only_through_other_statuses(tmp_path):
    with Sandbox(tmp_path) as box:
        assert box.sims["jira"].effective_index_lag() > 0  # the realistic default
        scenario = Scenario(box)
        play(box, scenario, STEPS)
        cycle_until(box, lambda: jira_issues(box)[0]["status"] == "Done")
        (issue,) = jira_issues(box)
        assert issue["status"] == "Done" and issue["fields"]["resolution"] == "Done"
        posted = [b["transition"]["id"] for b in transition_posts(box)]
        assert "61" in posted and "71" in posted and posted.index("61") < posted.index("71")
        for body in transition_posts(box):
            if body["transition"]["id"] in ("61", "71"):  # Resolve and Close carry the screen field
                assert body["fields"] == {"resolution": {"id": "10000"}}
        refused = [r for r in box.sims["jira"].requests if r.path.endswith("/transitions")
                   and r.method == "POST" and r.status >= 400]
        assert refused == []


def test_an_issue_moved_to_another_project_mid_scenario_keeps_syncing(tmp_path):
    with Sandbox(tmp_path) as box:
        scenario = Scenario(box)
        moved: dict = {}

        def move_after_creation(step) -> None:
            if step.act is Scenario.tier2_starts and not moved:
                (issue,) = jira_issues(box)
                reply = requests.post(f"{box.sims['jira'].base_url}/_sim/jira/move",
                                      json={"issue": issue["key"], "project": "SUP"}, timeout=5)
                moved.update(reply.json())
        play(box, scenario, STEPS, after=move_after_creation)
        cycle_until(box, lambda: "fix deployed" in str(box.snapshot()["zendesk"]["tickets"])
                    and jira_issues(box)[0]["status"] == "Done")
        (issue,) = jira_issues(box)  # still one issue: the moved one
        assert str(issue["id"]) == moved["id"] and issue["key"] == moved["key"] != moved["old_key"]
        assert issue["project"] == "SUP" and issue["status"] == "Done"
        ticket = next(t for t in box.snapshot()["zendesk"]["tickets"] if t["id"] == scenario.ticket_id)
        assert any("fix deployed to the gateway" in c["body"] for c in ticket["comments"] if not c["public"])
        with box.engine().store.transaction() as tx:
            rows = tx.exec_driver_sql("SELECT remote_id, key FROM links WHERE tracker = 'jira'").all()
        assert [tuple(r) for r in rows] == [(moved["id"], moved["key"])]


def test_lost_create_replies_under_a_three_second_index_lag_never_duplicate(tmp_path):
    with Sandbox(tmp_path) as box:
        jira = box.sims["jira"]
        jira.set_index_lag(3.0)
        box.start()  # again: the connector configuration follows the lag (search_lag_seconds)
        jira.set_create_reply_loss(0.05, seed=7)
        for n in range(30):
            sr = f"2700000000{n:04d}"
            box.people.zendesk.create_ticket(
                subject=f"{sr} - case {n}", description="x", requester=PARTNER,
                priority="normal", tags=["escalate_tier2", "escalation_recommended"],
                custom_fields={CF["sr"]: sr, CF["severity"]: "sev_3", CF["plan"]: "plan_enterprise",
                               CF["engagement"]: "Technical", CF["offer_type"]: "Azure Application Offer",
                               CF["offer_ids"]: f"offer-{n}", CF["seller"]: f"S-{n}", CF["scope"]: "scope_cloud",
                               CF["contact_name"]: "C", CF["contact_email"]: "c@x.example"})
        srs = {f"2700000000{n:04d}" for n in range(30)}

        def all_there() -> bool:
            got = {i["fields"].get("customfield_10100") for i in jira.snapshot()["issues"]}
            return srs <= got
        cycle_until(box, all_there, timeout=60)
        cycle_until(box, lambda: False, timeout=4)  # past the lag: a late duplicate would show now
        lost = [r for r in jira.requests if r.path == "/rest/api/2/issue" and r.reply_lost]
        assert lost, "the seeded loss rate lost no create reply: nothing was tested"
        per_sr = Counter(i["fields"].get("customfield_10100") for i in jira.snapshot()["issues"])
        assert {sr: n for sr, n in per_sr.items() if sr in srs and n != 1} == {}
        assert srs <= set(per_sr)


def test_a_service_desk_configured_as_software_keeps_notes_internal(tmp_path):
    runner = CliRunner()
    with Sandbox(tmp_path) as box:
        policy = tmp_path / "policy-sup.yaml"  # engineering escalations go to the service desk
        policy.write_text(Path(resolve_mapping_path("policy")).read_text()
                          .replace("jira: {project: ENG}", "jira: {project: SUP}"))
        config = yaml.safe_load(box.config_path.read_text())
        config["trackers"]["jira"].update(project="SUP", service_management=False)
        config["policy"] = str(policy)
        box.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        scenario = Scenario(box)
        play(box, scenario, STEPS)
        cycle_until(box, lambda: len(jira_issues(box)) == 1 and len(jira_issues(box)[0]["comments"]) >= 2)
        (issue,) = jira_issues(box)
        assert issue["project"] == "SUP"
        copies = [c for c in issue["comments"] if c["body"].startswith("[tiersync]")]
        assert copies and all(c["internal"] and not c["public"] for c in copies)
        result = runner.invoke(app, ["check", "--online", "--config", str(box.config_path)])
        assert result.exit_code == 2
        assert "service_management: false, but project SUP is a Jira Service Management" in result.output


def test_a_store_that_linked_jira_by_key_is_migrated_to_issue_ids(tmp_path):
    with Sandbox(tmp_path) as box:
        scenario = Scenario(box)
        play(box, scenario, STEPS[:3])
        (issue,) = jira_issues(box)
        with box.engine().store.transaction() as tx:  # as a store written before issue ids
            tx.exec_driver_sql("UPDATE links SET remote_id = ?, key = NULL WHERE tracker = 'jira'",
                               (issue["key"],))
        box.stop_store()
        play(box, scenario, STEPS[3:])
        cycle_until(box, lambda: "fix deployed" in str(box.snapshot()["zendesk"]["tickets"])
                    and jira_issues(box)[0]["status"] == "Done")
        assert len(jira_issues(box)) == 1 and jira_issues(box)[0]["status"] == "Done"
        with box.engine().store.transaction() as tx:
            rows = tx.exec_driver_sql("SELECT remote_id, key FROM links WHERE tracker = 'jira'").all()
        assert [tuple(r) for r in rows] == [(str(issue["id"]), issue["key"])]
