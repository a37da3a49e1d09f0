"""The command line: exit codes and messages (tracker-free, with in-memory trackers)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.lock import StoreLock
from sync import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def write_config(tmp_path: Path, **overrides) -> Path:
    config = {
        "store": f"sqlite:///{tmp_path / 'store.db'}",
        "trackers": {
            "zendesk": {"kind": "memory", "base_url": "memory://", "mapping": "zendesk"},
            "azure_devops": {"kind": "memory", "base_url": "memory://", "mapping": "azure_devops"},
            "jira": {"kind": "memory", "base_url": "memory://", "mapping": "jira"},
        },
    }
    config.update(overrides)
    path = tmp_path / "tiersync.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_check_passes_on_valid_config(tmp_path):
    result = runner.invoke(app, ["check", "--config", str(write_config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output and "3 trackers" in result.output


def test_check_on_broken_mapping_names_file_key_value_and_exits_2(tmp_path):
    broken = tmp_path / "zendesk-broken.yaml"
    text = (ROOT / "mappings" / "zendesk.yaml").read_text().replace(
        "severity:\n    path: custom_fields.360010000002", "severity:\n    path: custom_fields.360010000002\n    direction: sideways")
    broken.write_text(text)
    config = write_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["trackers"]["zendesk"]["mapping"] = str(broken)
    config.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert str(broken) in result.output and "fields.severity.direction" in result.output
    assert "'sideways'" in result.output


def test_check_prints_every_problem(tmp_path):
    config = write_config(tmp_path, policy="no-such-policy.yaml")
    data = yaml.safe_load(config.read_text())
    data["trackers"]["jira"]["kind"] = "bugzilla"
    data["trackers"]["zendesk"]["token"] = "s3cr3t-inline"
    config.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "trackers.jira.kind: unknown tracker kind 'bugzilla'" in result.output
    assert "trackers.zendesk: the key 'token' would put a secret" in result.output
    assert "no-such-policy.yaml" in result.output
    assert "s3cr3t-inline" not in result.output


def test_missing_config_file_exits_2(tmp_path):
    result = runner.invoke(app, ["check", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "configuration file not found" in result.output


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    config = write_config(tmp_path)
    monkeypatch.setenv("TIERSYNC_STORE", f"sqlite:///{tmp_path / 'other.db'}")
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 0 and "other.db" in result.output


def test_run_once_and_audit_verify(tmp_path):
    config = write_config(tmp_path)
    result = runner.invoke(app, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "pulled=0" in result.output
    result = runner.invoke(app, ["audit", "--verify", "--config", str(config)])
    assert result.exit_code == 0 and "intact" in result.output


def test_second_process_on_same_sqlite_store_exits_3(tmp_path):
    config = write_config(tmp_path)
    with StoreLock.for_url(f"sqlite:///{tmp_path / 'store.db'}").held():
        result = runner.invoke(app, ["run", "--once", "--config", str(config)])
    assert result.exit_code == 3 and "in use" in result.output


def test_replay_needs_an_id_or_all(tmp_path):
    config = write_config(tmp_path)
    result = runner.invoke(app, ["replay", "--config", str(config)])
    assert result.exit_code == 2
    result = runner.invoke(app, ["replay", "--all", "--config", str(config)])
    assert result.exit_code == 0 and "0 action(s)" in result.output


def test_check_passes_on_the_shipped_example_configuration(monkeypatch):
    for name in ("ZENDESK_EMAIL", "ZENDESK_TOKEN", "AZURE_DEVOPS_PAT", "JIRA_EMAIL", "JIRA_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["check", "--config", str(ROOT / "examples" / "tiersync.yaml")])
    assert result.exit_code == 0, result.output
    assert "zendesk=zendesk" in result.output and "azure_devops=azure_devops" in result.output
    assert "warning: trackers.zendesk.token_env: environment variable ZENDESK_TOKEN is not set" in result.output
