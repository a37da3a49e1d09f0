"""`tiersync audit`: the table, and CSV / JSON Lines exports with the same filters."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from typer.testing import CliRunner

from core.audit import AuditLog
from core.store import Store
from sync import app
from tests.test_audit_chain import T0, fill
from tests.test_cli import write_config

runner = CliRunner()


def _config(tmp_path, monkeypatch) -> str:
    monkeypatch.delenv("TIERSYNC_AUDIT_KEY", raising=False)
    config = str(write_config(tmp_path))
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    fill(store, AuditLog(), 12)  # entry n: hour n, escalation esc-(n % 4), record zendesk:n
    store.close()
    return config


def test_filters_are_the_same_for_table_csv_and_json_lines(tmp_path, monkeypatch):
    config = _config(tmp_path, monkeypatch)
    args = ["audit", "--escalation", "esc-1", "--since", (T0 + timedelta(hours=2)).isoformat(),
            "--until", (T0 + timedelta(hours=10)).isoformat(), "--config", config]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert [line.split()[0] for line in table.output.splitlines()[1:]] == ["6", "10"]
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, args + ["--format", "csv"]).output)))
    assert [r["seq"] for r in rows] == ["6", "10"] and json.loads(rows[0]["after"]) == {"severity": 5}
    lines = runner.invoke(app, args + ["--format", "jsonl"]).output.splitlines()
    assert [json.loads(line)["remote_id"] for line in lines] == ["5", "9"]


def test_the_table_shows_the_newest_entries_and_says_so(tmp_path, monkeypatch):
    config = _config(tmp_path, monkeypatch)
    result = runner.invoke(app, ["audit", "--limit", "3", "--config", config])
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["10", "11", "12"]
    assert "the newest 3 entries" in lines[4]
    record = runner.invoke(app, ["audit", "--tracker", "zendesk", "--id", "4", "--run", "run-1",
                                 "--action", "merged", "--config", config])
    assert [line.split()[0] for line in record.output.splitlines()[1:]] == ["5"]
    bad = runner.invoke(app, ["audit", "--format", "xml", "--config", config])
    assert bad.exit_code == 2 and "use table, jsonl or csv" in bad.output
