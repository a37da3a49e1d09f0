"""`tiersync daemon` as a real process: SIGTERM finishes the current page and exits 0 with a
consistent store; a second daemon on the same SQLite store refuses to start (exit code 3)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bench.chaos_process import StoreProbe, tiersync_command, wait_until
from bench.chaos_scenario import People, make_cases
from wiring import connector_class
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e


def daemon(box: Sandbox, log: Path, interval: float = 0.2) -> subprocess.Popen:
    return subprocess.Popen([*tiersync_command(), "daemon", "--interval", str(interval),
                             "--config", str(box.config_path)],
                            env={**os.environ, **box.env}, stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"), text=True)


def read(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def tickets_after_cursor(box: Sandbox, cursor: str | None) -> set[str]:
    """Ids the Zendesk connector delivers when resuming from ``cursor`` (a new process would)."""
    config = box.load_config()
    connector = connector_class("zendesk")("zendesk", config.trackers["zendesk"])
    try:
        return {r.id for page in connector.fetch_changes(cursor) for r in page.records}
    finally:
        connector.close()


def test_sigterm_during_a_pull_exits_0_with_the_cursor_committed_with_its_page(tmp_path):
    with Sandbox(tmp_path) as box:
        people = People(box, make_cases(40, seed=3))
        people.intake()
        escalated = {str(people.tickets[c.sr]) for c in people.cases}
        zendesk = box.sims["zendesk"]
        zendesk.export_page_size = 5  # eight pages, each its own transaction
        zendesk.set_faults(latency_ms=25)  # a pull that lasts a few seconds
        db = tmp_path / "tiersync.db"
        proc = daemon(box, tmp_path / "daemon.log")
        # SIGTERM as soon as the first page is committed: mid-pull
        probe = StoreProbe(db)
        assert wait_until(lambda: bool(probe.query("SELECT 1 FROM cursors WHERE connector = 'zendesk'")),
                          60, poll=0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "daemon.log").read_text()
        zendesk.set_faults(latency_ms=0)

        assert read(db, "PRAGMA integrity_check") == [("ok",)]
        [(finished, stats)] = read(db, "SELECT finished_at, stats FROM runs")
        assert finished is not None and '"stopped_early": true' in stats  # the cycle ended cleanly
        linked = {r[0] for r in read(db, "SELECT remote_id FROM links WHERE tracker = 'zendesk'")}
        [(cursor,)] = read(db, "SELECT cursor FROM cursors WHERE connector = 'zendesk'")
        rest = tickets_after_cursor(box, cursor)
        # every page processed is behind the cursor, every page behind it was processed
        assert linked and rest - {"1"}, "stopped in the middle of the pull"
        assert not linked & rest
        assert escalated <= linked | rest
        assert read(db, "SELECT count(*) FROM escalations") == [(len(linked),)]

        # a restarted tiersync takes up exactly where it stopped: every ticket escalated once
        run = subprocess.run([*tiersync_command(), "run", "--once", "--config", str(box.config_path)],
                             env={**os.environ, **box.env}, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert read(db, "SELECT count(*) FROM escalations") == [(len(escalated),)]
        items = people.ado_items()
        assert all(len(items.get(c.sr, [])) == 1 for c in people.cases if c.open)


def test_second_daemon_on_the_same_store_refuses_with_exit_code_3(tmp_path):
    with Sandbox(tmp_path) as box:
        first = daemon(box, tmp_path / "first.log")
        probe = StoreProbe(tmp_path / "tiersync.db")
        assert wait_until(lambda: probe.cycles() > 0, 60), (tmp_path / "first.log").read_text()
        second = subprocess.run([*tiersync_command(), "daemon", "--interval", "0.2",
                                 "--config", str(box.config_path)],
                                env={**os.environ, **box.env}, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 3
        assert f"in use by tiersync process {first.pid}" in second.stderr
        assert "only one tiersync may run against a SQLite store" in second.stderr
        assert first.poll() is None, "the first daemon keeps running"
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0


def test_restart_right_after_sigkill_gets_the_lock(tmp_path):
    with Sandbox(tmp_path) as box:
        probe = StoreProbe(tmp_path / "tiersync.db")
        first = daemon(box, tmp_path / "first.log")
        assert wait_until(lambda: probe.cycles() > 0, 60)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        began = time.monotonic()
        second = daemon(box, tmp_path / "second.log")
        before = probe.cycles()
        assert wait_until(lambda: probe.cycles() > before, 60), (tmp_path / "second.log").read_text()
        assert second.poll() is None and time.monotonic() - began < 60
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
