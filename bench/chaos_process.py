"""The real sync process under test, and a read-only look into its SQLite store.

:class:`SyncProcess` runs ``tiersync daemon`` from the virtualenv as a subprocess with the
sandbox's credentials in its environment, kills it with SIGKILL and restarts it, and stops it
with SIGTERM. :class:`StoreProbe` reads the store (outbox, runs) without taking tiersync's lock,
so the driver can tell when the daemon has caught up.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

QUIET_KEYS = ("opened", "changed", "actions_done", "actions_retrying", "actions_dead", "conflicts",
              "quarantined")


def tiersync_command() -> list[str]:
    """The installed ``tiersync`` entry point beside this interpreter (the real CLI)."""
    script = Path(sys.executable).with_name("tiersync")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sync; sync.main()"]


def store_time(moment: datetime) -> str:
    """A UTC time as SQLAlchemy stores it in SQLite (naive, microseconds), for comparisons."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class ProcessStats:
    starts: int = 0
    kills: int = 0
    unexpected_exits: list[int] = field(default_factory=list)  # exit codes of deaths we did not cause
    lock_refusals: int = 0  # restarts refused with exit code 3 (the lock outlived the killed process)


class SyncProcess:
    """``tiersync daemon`` as a subprocess that can be killed and restarted."""

    def __init__(self, config: Path, env: dict[str, str], log_path: Path, interval: float,
                 extra: tuple[str, ...] = ()):
        self.config = config
        self.extra = extra
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.interval = interval
        self.proc: subprocess.Popen | None = None
        self.started_at = utcnow()
        self.stats = ProcessStats()

    def command(self, *args: str) -> list[str]:
        return [*tiersync_command(), *args, "--config", str(self.config)]

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command("daemon", "--interval", str(self.interval),
                                                      *self.extra),
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.started_at = utcnow()
        self.stats.starts += 1

    def ensure_running(self) -> None:
        """Restart the daemon if it died on its own (and remember how it died)."""
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            self.stats.unexpected_exits.append(code)
            if code == 3:
                self.stats.lock_refusals += 1
            self.start()

    def kill(self, restart: bool = True) -> int | None:
        """SIGKILL, as the OOM killer or a node failure would; then start a new daemon at once.
        Returns the killed process id."""
        pid = None
        if self.proc is not None and self.proc.poll() is None:
            pid = self.proc.pid
            os.kill(pid, signal.SIGKILL)
            self.proc.wait()
            self.stats.kills += 1
        if restart:
            self.start()
        return pid

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """Run another tiersync command (replay, deadletters) against the same config."""
        return subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True,
                              timeout=timeout)


class StoreProbe:
    """Read-only queries on the daemon's store: SQLite (a file path) or any SQLAlchemy URL."""

    def __init__(self, db_path: Path | str):
        self.url = db_path if isinstance(db_path, str) and "://" in db_path else None
        self.db_path = None if self.url else Path(db_path)
        self._engine = None
        self.connectors: tuple[str, ...] = ()  # several daemons: each must have had a quiet pull
        if self.url:
            from sqlalchemy import create_engine
            self._engine = create_engine(self.url, pool_size=2)

    def _t(self, moment: datetime):
        return moment if self.url else store_time(moment)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.url:
            return self._sql_query(sql, params)
        if not self.db_path.exists():
            return []
        for attempt in range(20):
            try:
                conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
                try:
                    return conn.execute(sql, params).fetchall()
                finally:
                    conn.close()
            except sqlite3.OperationalError as exc:  # tables not created yet, or a busy moment
                if "no such table" in str(exc):
                    return []
                time.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"cannot read {self.db_path}")

    def _sql_query(self, sql: str, params: tuple) -> list[tuple]:
        from sqlalchemy.exc import ProgrammingError
        try:
            with self._engine.connect() as conn:
                return [tuple(r) for r in conn.exec_driver_sql(sql.replace("%", "%%").replace("?", "%s"),
                                                               params).all()]
        except ProgrammingError as exc:  # tables not created yet
            if "does not exist" in str(exc):
                return []
            raise

    def integrity(self) -> str:
        if self.url:
            return "n/a (PostgreSQL)"
        return str(self.query("PRAGMA integrity_check")[0][0])

    def outbox_counts(self) -> dict[str, int]:
        return {state: n for state, n in self.query("SELECT state, count(*) FROM outbox GROUP BY state")}

    def actions_created_since(self, since: datetime) -> int:
        rows = self.query("SELECT count(*) FROM outbox WHERE created_at > ?", (self._t(since),))
        return rows[0][0] if rows else 0

    def runs_since(self, since: datetime) -> list[dict[str, Any]]:
        """Finished cycles that started after ``since``, oldest first, with their stats."""
        rows = self.query("SELECT run_id, started_at, stats FROM runs WHERE finished_at IS NOT NULL "
                           "AND mode = 'sync' AND started_at > ? ORDER BY started_at",
                           (self._t(since),))
        return [{"run_id": r[0], "started_at": r[1], **_stats(r[2])} for r in rows]

    def started_since(self, since: datetime) -> bool:
        """Whether a cycle (finished or not) started after ``since``: the daemon is at work."""
        return bool(self.query("SELECT 1 FROM runs WHERE started_at > ? LIMIT 1", (self._t(since),)))

    def cycles(self) -> int:
        rows = self.query("SELECT count(*) FROM runs WHERE mode = 'sync'")
        return rows[0][0] if rows else 0

    def quarantined(self) -> int:
        rows = self.query("SELECT count(*) FROM quarantine WHERE resolved_at IS NULL")
        return rows[0][0] if rows else 0

    def quiet_since(self, since: datetime, connectors: tuple[str, ...] = ()) -> bool:
        """A whole cycle that started after ``since`` found nothing to do, and nothing is queued;
        with several daemons, for each of ``connectors`` a quiet cycle of the daemon pulling it."""
        runs = [run for run in self.runs_since(since) if _is_quiet(run)]
        if not runs:
            return False
        pulled = {name for run in runs for name in run.get("pulled_from", [])}
        if not set(connectors or self.connectors) <= pulled:
            return False
        return self.outbox_counts().get("pending", 0) == 0

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _stats(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return json.loads(value or "{}")


def _is_quiet(run: dict[str, Any]) -> bool:
    return (all(not run.get(key) for key in QUIET_KEYS) and not run.get("connector_errors")
            and not run.get("stopped_early"))


def wait_until(check: Callable[[], bool], timeout: float, poll: float = 0.25,
               tick: Callable[[], None] = lambda: None) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds passed; ``tick`` runs each round."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick()
        if check():
            return True
        time.sleep(poll)
    return False
