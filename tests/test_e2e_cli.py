"""The command line against the simulators: check --online, status and explain on the demo's
data, and an SLA breach written back to Azure DevOps and Zendesk."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml
from typer.testing import CliRunner

from harness.demo import SR, STEPS, Scenario
from harness.sandbox import Sandbox
from sync import app

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture
def box(tmp_path):
    with Sandbox(tmp_path) as sandbox:
        yield sandbox


def test_check_online_passes_against_the_simulators(box):
    result = runner.invoke(app, ["check", "--online", "--config", str(box.config_path)])
    assert result.exit_code == 0, result.output


def test_check_online_reports_what_the_tracker_lacks_by_mapping_file_and_key(box, tmp_path):
    broken = tmp_path / "jira-broken.yaml"
    text = (box.load_config().mappings["jira"].source)
    broken.write_text(open(text).read().replace("customfield_10100", "customfield_19999")
                      .replace('"Sev 4": 4', '"Sev 5": 4'))
    config = yaml.safe_load(box.config_path.read_text())
    config["trackers"]["jira"]["mapping"] = str(broken)
    box.config_path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["check", "--online", "--config", str(box.config_path)])
    assert result.exit_code == 2
    assert str(broken) in result.output
    assert "customfield_19999" in result.output and "Sev 5" in result.output


def test_check_online_with_a_wrong_token_names_tracker_and_variable(box, monkeypatch):
    box.sims["azure_devops"].pat = "the-real-pat"
    monkeypatch.setenv("AZURE_DEVOPS_PAT", "a-wrong-pat")
    result = runner.invoke(app, ["check", "--online", "--config", str(box.config_path)])
    assert result.exit_code == 2
    assert "azure_devops" in result.output and "AZURE_DEVOPS_PAT" in result.output
    assert "a-wrong-pat" not in result.output


def test_status_and_explain_on_the_demo_data(box):
    scenario = Scenario(box)
    for step in STEPS[:4]:
        step.act(scenario)
        box.cycle()
    box.stop_store()
    result = runner.invoke(app, ["status", "--json", "--config", str(box.config_path)])
    assert result.exit_code == 0, result.output
    import json
    [row] = json.loads(result.output)
    assert row["sr_number"] == SR and row["state"] == "waiting_on_customer"
    assert row["sla"]["acknowledgement"]["status"] == "met"
    assert row["sla"]["first_solution"]["status"] == "paused"
    assert any(link.startswith("azure_devops:") for link in row["links"])
    box.clear_requests()
    result = runner.invoke(app, ["explain", f"zendesk:{scenario.ticket_id}",
                                 "--config", str(box.config_path)])
    assert result.exit_code == 0, result.output
    assert "mapping" in result.output and "zendesk.yaml" in result.output
    assert "routing" in result.output.lower() and "sla" in result.output.lower()
    assert box.write_requests() == {"zendesk": 0, "azure_devops": 0, "jira": 0}, "explain wrote"


def test_sla_breach_is_written_back_to_azure_devops_and_zendesk(box):
    scenario = Scenario(box)
    for step in STEPS[:2]:  # the ticket is escalated and routed; nobody acknowledges it
        step.act(scenario)
        box.cycle()
    later = datetime.now(timezone.utc) + timedelta(days=4)
    report = box.cycle(clock=lambda: later)  # a periodic cycle: nothing changed in any tracker
    assert report.connector_errors == []
    snap = box.snapshot()
    [item] = [w for w in snap["azure_devops"]["work_items"] if SR in (w["title"] or "")]
    assert item["fields"]["Custom.AcknowledgedOnTime"] is False
    assert any("SLA breach" in c["text"] and "acknowledgement" in c["text"] for c in item["comments"])
    [ticket] = [t for t in snap["zendesk"]["tickets"] if t["id"] == scenario.ticket_id]
    breach = [c for c in ticket["comments"] if "SLA breach" in c["body"]]
    assert breach and all(not c["public"] for c in breach)
    # the breach is reported once: another late cycle adds nothing
    box.clear_requests()
    box.cycle(clock=lambda: later + timedelta(minutes=5))
    assert box.write_requests()["zendesk"] == 0 and box.write_requests()["azure_devops"] == 0
