"""The command line an admin expects: every problem in one check, secrets never printed,
--version, exit codes in --help, --json listings, explicit empty listings, escaped tracker text."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from connectors.memory import MemoryConnector
from wiring import load_config
from core.engine import CycleReport, SyncEngine
from core.store import Store
from core.terminal import escape_control
from sync import app
from tests.engine_helpers import Clock, RouteToTier2, partner_ticket
from tests.test_cli import ROOT, write_config

runner = CliRunner()


def _edit(config: Path, change) -> Path:
    data = yaml.safe_load(config.read_text())
    change(data)
    config.write_text(yaml.safe_dump(data))
    return config


def test_check_prints_problems_of_every_file_and_stage_in_one_run(tmp_path):
    mapping = tmp_path / "zendesk.yaml"
    mapping.write_text((ROOT / "mappings" / "zendesk.yaml").read_text()
                       .replace("  title: {path: subject", "  titel: {path: subject")
                       .replace("  sr_number:", "  sr_numbr:"))
    policy = tmp_path / "policy.yaml"
    policy.write_text((ROOT / "mappings" / "policy.yaml").read_text() + "\nsla_typo: {}\n")
    config = _edit(write_config(tmp_path, policy=str(policy)), lambda d: (
        d.update(log_levle="DEBUG"),
        d["trackers"]["zendesk"].update(mapping=str(mapping), page_sise=10)))
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    for typo in ("log_levle", "page_sise", "fields.titel", "fields.sr_numbr", "sla_typo"):
        assert typo in result.output, (typo, result.output)


def test_config_errors_never_print_secret_values(tmp_path):
    config = _edit(write_config(tmp_path), lambda d: (
        d["trackers"]["zendesk"].update(personal_access_token="pat-Xy7Qq9LmZ2"),
        d["trackers"]["jira"].update({"api-token": "ATATT3xFfGF0Zz9Yy8Xx7"}),
        d["trackers"]["azure_devops"].update(password="Hunter2!root")))
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    for key in ("personal_access_token", "api-token", "password"):
        assert key in result.output
    for value in ("pat-Xy7Qq9LmZ2", "ATATT3xFfGF0Zz9Yy8Xx7", "Hunter2!root"):
        assert value not in result.output


def test_credentials_in_base_url_are_refused_with_a_pointer_to_the_env_settings(tmp_path):
    config = write_config(tmp_path)
    config = _edit(config, lambda d: d["trackers"].update(
        zendesk={"kind": "zendesk", "base_url": "https://agent:S3cretPw@acme.zendesk.com",
                 "mapping": "zendesk"},
        azure_devops={"kind": "azure_devops", "project": "Support", "mapping": "azure_devops",
                      "base_url": "https://dev.azure.com/fabrikam?token=abc123xyz"}))
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "trackers.zendesk.base_url" in result.output and "token_env" in result.output
    assert "trackers.azure_devops.base_url" in result.output and "pat_env" in result.output
    assert "S3cretPw" not in result.output and "abc123xyz" not in result.output


def test_check_masks_the_password_of_the_store_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERSYNC_STORE", "postgresql+psycopg://tiersync:Db-Pa55word@127.0.0.1:1/x")
    result = runner.invoke(app, ["check", "--config", str(write_config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "Db-Pa55word" not in result.output and "tiersync:[REDACTED]@127.0.0.1" in result.output


def test_an_unusable_store_url_is_reported_without_its_password(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERSYNC_STORE", "postgresql+nosuchdriver://tiersync:Db-Pa55word@db/x")
    result = runner.invoke(app, ["status", "--config", str(write_config(tmp_path))])
    assert result.exit_code == 2
    assert "nosuchdriver" in result.output and "Db-Pa55word" not in result.output


def test_version_and_exit_codes_in_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("tiersync ")
    help_text = " ".join(runner.invoke(app, ["--help"]).output.split())
    assert "Exit codes" in help_text
    assert "exits 1 while quarantined records or dead letters remain" in help_text
    assert "retrying longer than the configured time" in help_text
    for code in ("0:", "2:", "3:"):
        assert code in help_text


def test_empty_listings_say_so_and_json_is_valid(tmp_path):
    config = str(write_config(tmp_path))
    for command, words in (("quarantine", "no record is quarantined"),
                           ("deadletters", "no dead-lettered action"),
                           ("status", "no open escalation"), ("audit", "no audit entry")):
        result = runner.invoke(app, [command, "--config", config])
        assert result.exit_code == 0 and "nothing to show" in result.output and words in result.output
        as_json = runner.invoke(app, [command, "--json", "--config", config])
        assert as_json.exit_code == 0
        if command != "audit":  # audit --json is JSON Lines: nothing at all when empty
            assert json.loads(as_json.output) == []
    dry = runner.invoke(app, ["run", "--dry-run", "--config", config])
    assert "nothing to show" in dry.output


def _seed_store(tmp_path: Path, config: Path, subject: str, description: str) -> None:
    """Sync one ticket into the configuration's store with in-memory trackers."""
    cfg = load_config(config)
    store = Store(cfg.settings.store)
    store.migrate()
    trackers = {name: MemoryConnector(name) for name in cfg.trackers}
    trackers["zendesk"].put(partner_ticket(subject=subject, description=description))
    SyncEngine(store, trackers, cfg.mappings, RouteToTier2(), clock=Clock()).run_cycle()
    store.close()


def test_status_escapes_control_characters_and_markup_in_tracker_text(tmp_path):
    config = write_config(tmp_path)
    _seed_store(tmp_path, config, "12345678901234 - x", "desc")
    _edit(config, lambda d: None)
    store = Store(load_config(config).settings.store)
    from sqlalchemy import text
    with store.transaction() as tx:  # a queue name from a tracker holding an escape sequence
        tx.execute(text("UPDATE escalations SET data = json_set(data, '$.queue', :q)"),
                   {"q": "\x1b]0;pwned\x07[red]Q\x1b[2J"})
    store.close()
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b" in result.output and "[red]" in result.output


def test_dry_run_json_prints_full_payloads(tmp_path):
    config = write_config(tmp_path)
    long_description = "The SAS URL returns 403 since this morning. " * 20  # far over 160 chars
    cfg = load_config(config)
    store = Store(cfg.settings.store)
    store.migrate()
    trackers = {name: MemoryConnector(name) for name in cfg.trackers}
    trackers["zendesk"].put(partner_ticket(description=long_description))
    engine = SyncEngine(store, trackers, cfg.mappings, RouteToTier2(), clock=Clock())
    engine.pull("zendesk", CycleReport(run_id="seed"), lambda: False)  # planned, not pushed
    store.close()
    result = runner.invoke(app, ["run", "--dry-run", "--json", "--config", str(config)])
    data = json.loads(result.output)
    [create] = [a for a in data["planned"] if a["kind"] == "create"]
    assert create["payload"]["fields"]["System.Description"].startswith(long_description.strip()[:300])
    text = runner.invoke(app, ["run", "--dry-run", "--config", str(config)]).output
    assert "actions would be sent" in text and long_description.strip() not in text


def test_escape_control_rules():
    assert escape_control("a\x1b[31mb\r\n\x9b\u202e") == "a\\x1b[31mb\\r\\n\\u009b\\u202e"
    assert escape_control("line1\nline2", keep_newlines=True) == "line1\nline2"
    assert escape_control("Müller — ok") == "Müller — ok"


def test_prune_command_reports_counts_and_the_audit_chain_verifies(tmp_path):
    config = write_config(tmp_path)
    _seed_store(tmp_path, config, "12345678901234 - x", "desc")
    result = runner.invoke(app, ["prune", "--older-than", "0", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert counts["outbox"] >= 1 and set(counts) == {"outbox", "history", "quarantine", "runs"}
    verify = runner.invoke(app, ["audit", "--verify", "--config", str(config)])
    assert verify.exit_code == 0 and "intact" in verify.output
    assert runner.invoke(app, ["prune", "--config", str(config)]).exit_code == 2, "DAYS is required"


def test_mask_url_keeps_urls_without_credentials_as_written():
    from core.config_secrets import mask_url
    assert mask_url("sqlite:////var/lib/tiersync/store.db") == "sqlite:////var/lib/tiersync/store.db"
    assert mask_url("postgresql+psycopg://u:p%40ss@db:5432/t?sslmode=require&password=x") == \
        "postgresql+psycopg://u:[REDACTED]@db:5432/t?sslmode=require&password=[REDACTED]"
