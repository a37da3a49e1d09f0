"""The chaos bench with several daemons on one PostgreSQL store (issue 12).

:class:`Fleet` runs N ``tiersync daemon`` processes on the same configuration and store and
looks like one :class:`SyncProcess` to the bench (cli, ensure_running, stop). :class:`Killer`
SIGKILLs one of them every ``kill_every`` seconds (restarting it, as systemd or Kubernetes
would) and measures the takeover: the time until every pull lease the killed daemon held is
held by a live daemon and none of the outbox actions it had claimed is still claimed by it.
"""
from __future__ import annotations

import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos_process import ProcessStats, StoreProbe, SyncProcess, utcnow

TAKEOVER_LIMIT = 90.0  # a takeover not seen by then is recorded as this long


class Fleet:
    def __init__(self, config: Path, env: dict[str, str], workdir: Path, interval: float, count: int,
                 extras: list[tuple[str, ...]] | None = None):
        extras = extras or [()] * count
        self.procs = [SyncProcess(config, env, workdir / f"daemon-{n}.log", interval, extras[n])
                      for n in range(count)]
        self.lock = threading.Lock()

    @property
    def started_at(self):
        return min(p.started_at for p in self.procs)

    @property
    def stats(self) -> ProcessStats:
        total = ProcessStats()
        for p in self.procs:
            total.starts += p.stats.starts
            total.kills += p.stats.kills
            total.unexpected_exits += p.stats.unexpected_exits
            total.lock_refusals += p.stats.lock_refusals
        return total

    def start(self) -> None:
        for p in self.procs:
            p.start()

    def ensure_running(self) -> None:
        with self.lock:
            for p in self.procs:
                p.ensure_running()

    def kill_one(self, rng: random.Random) -> int | None:
        with self.lock:
            return rng.choice(self.procs).kill()

    def stop(self, timeout: float = 60.0) -> int | None:
        codes = [p.stop(timeout) for p in self.procs]
        return max((c for c in codes if c is not None), default=None) if None not in codes else None

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        return self.procs[0].cli(*args, timeout=timeout)


@dataclass
class Takeovers:
    seconds: list[float] = field(default_factory=list)
    held_at_kill: list[int] = field(default_factory=list)  # leases + claims the killed one held


class Killer(threading.Thread):
    """Kill one daemon every ``every`` seconds until stopped; measure each takeover."""

    def __init__(self, fleet: Fleet, probe: StoreProbe, every: float, seed: int):
        super().__init__(name="killer", daemon=True)
        self.fleet, self.probe, self.every = fleet, probe, every
        self.rng = random.Random(f"{seed}:workers")
        self.halt = threading.Event()
        self.result = Takeovers()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            pid = self.fleet.kill_one(self.rng)
            killed_at = time.monotonic()
            if pid is None:
                continue
            holder = self._holder(pid)
            pulls = self._pulls(holder)
            self.result.held_at_kill.append(len(pulls) + len(self._claims(holder)))
            while not self._taken_over(holder, pulls):
                if time.monotonic() - killed_at > TAKEOVER_LIMIT:
                    break
                time.sleep(0.2)
            self.result.seconds.append(round(time.monotonic() - killed_at, 1))

    def _holder(self, pid: int) -> str | None:
        rows = self.probe.query("SELECT holder FROM leases WHERE name LIKE ?", (f"worker:%-{pid}-%",))
        return rows[0][0] if rows else None

    def _pulls(self, holder: str | None) -> list[str]:
        rows = self.probe.query("SELECT name FROM leases WHERE holder = ? AND name LIKE 'pull:%'",
                                (holder or "",))
        return [r[0] for r in rows]

    def _claims(self, holder: str | None) -> list[int]:
        rows = self.probe.query("SELECT id FROM outbox WHERE claimed_by = ? AND state = 'pending'",
                                (holder or "",))
        return [r[0] for r in rows]

    def _taken_over(self, holder: str | None, pulls: list[str]) -> bool:
        if holder is None:
            return True
        now = utcnow()
        for name in pulls:
            rows = self.probe.query("SELECT holder FROM leases WHERE name = ? AND expires_at > ?",
                                    (name, now))
            if not rows or rows[0][0] == holder:
                return False
        return not self._claims(holder)
