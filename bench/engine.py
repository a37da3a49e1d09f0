"""The engine's own cost: in-memory trackers (no HTTP at all), the shipped mappings and policy.

    python bench/engine.py [--n 1000] [--store URL] [--page-size 100] [--profile]

Phases, each timed on its own, printed as ``name=value`` lines:

- ``first_sync``: N escalated Zendesk tickets (Sev 1, so the policy mirrors each to Azure DevOps
  and Jira). ``first_sync.escalations_per_s`` is N over the pull of the first cycle (escalations
  opened, decided and their two mirrors queued); ``first_sync.settled_escalations_per_s`` is N
  over every cycle until nothing is left to do (mirrors created, echoes read back).
- ``update_wave``: each Azure DevOps mirror moves to Actively Working; ``records_per_s`` is N over
  the cycle that takes the change in and queues its write-back to Zendesk and Jira;
  ``settled_records_per_s`` over every cycle until quiet (the writes applied, echoes read).
- ``ignored``: N Zendesk tickets that start no escalation, in one cycle.
- ``idle``: one cycle with nothing changed, over the N linked escalations (``idle.seconds``);
  ``idle.fresh_seconds``: the same in a fresh process (the trackers' state handed over in a
  file, the store reopened, a new engine: nothing held in memory; its first cycle, lazy imports
  and all); ``idle.due_<k>.seconds``: a cycle in which the next-decision instants of k
  escalations have passed (1 % and 10 % of N, set in the store; the policy finds nothing to
  write for them), with ``idle.due_<k>.ms_per_due`` and ``cpu_ms_per_due`` (the cycle's cost
  over the plain idle one, per escalation due: flat in k when the cost is linear in what is due).

``*_per_cpu_s`` are the same rates over the process's CPU time (on a shared machine the wall
clock also counts other processes' turns). ``sql.*`` counts statements (an ``executemany`` is one) and commits of the first sync and the wave
per record pulled (and per escalation and phase); ``rss_peak_mb`` is the process's peak resident set,
``memory.trackers_mb`` what the three in-memory trackers' records take (traced as a fresh process
loads them: they stand in for the vendors' servers, which hold them in production) and
``rss_peak_mb_without_trackers`` the difference, tiersync's own peak; ``store.bytes_per_escalation``
the store's size over N. ``--profile`` runs each phase under cProfile and prints its top functions
(the connectors' lanes then run one after the other, in the main thread, where cProfile sees them).
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pickle
import subprocess
import io
import logging
import pstats
import resource
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, select, text, update  # noqa: E402

from connectors.memory import MemoryConfig, MemoryConnector  # noqa: E402
from core import collector, schema as t  # noqa: E402
from core.engine import CycleReport, EngineSettings, SyncEngine  # noqa: E402
from core.mapping import load_mapping  # noqa: E402
from core.policy import load_policy  # noqa: E402
from core.store import Store  # noqa: E402

TRACKERS = ("zendesk", "azure_devops", "jira")


class Counter:
    """SQL statements and commits seen on the store's engine."""

    def __init__(self, store: Store):
        self.statements = 0
        self.commits = 0
        event.listen(store.engine, "before_cursor_execute", self._statement)
        event.listen(store.engine, "commit", self._commit)

    def _statement(self, *_args) -> None:
        self.statements += 1

    def _commit(self, *_args) -> None:
        self.commits += 1

    def snapshot(self) -> tuple[int, int]:
        return self.statements, self.commits


def ticket(n: int, escalate: bool = True) -> dict:
    """A ticket the shipped policy accepts and routes to both tier 2 trackers (Sev 1)."""
    sr = f"{10_000_000_000_000 + n}"
    return {
        "subject": f"{sr} - Bench case {n}", "description": "Portal returns 403 for the partner.",
        "status": "new", "priority": "urgent", "tags": ["escalate_tier2"] if escalate else [],
        "requester.email": "support@partner.example", "requester.name": "Partner Support",
        "assignee.email": "agent1@tier1.example", "organization.name": "Contoso",
        "custom_fields.360010000001": sr, "custom_fields.360010000002": "sev_1",
        "custom_fields.360010000003": "plan_enterprise", "custom_fields.360010000004": "Technical",
        "custom_fields.360010000005": "Azure Application Offer",
        "custom_fields.360010000017": "Ana Souza", "custom_fields.360010000014": "scope_cloud",
        "custom_fields.360010000008": "SELLER-4711",
    }


class Bench:
    def __init__(self, url: str, page_size: int, profile: bool):
        # the trackers' call log is for tests' assertions: not kept (it would grow with N here)
        self.trackers = {name: MemoryConnector(name, MemoryConfig(mapping=name, page_size=page_size,
                                                                  record_calls=False))
                         for name in TRACKERS}
        for tracker in self.trackers.values():
            _quick_clock(tracker)
        mappings = {name: load_mapping(ROOT / "mappings" / f"{name}.yaml") for name in TRACKERS}
        self.store = Store(url)
        self.store.migrate()
        # cProfile sees the main thread only: profiled, the lanes run one after the other
        self.engine = SyncEngine(self.store, self.trackers, mappings,
                                 load_policy(ROOT / "mappings" / "policy.yaml"),
                                 settings=EngineSettings(outbox_batch=max(100, page_size),
                                                         concurrent_pulls=not profile),
                                 clock=self.now)
        self.sql = Counter(self.store)
        self.profile = profile
        self.lines: dict[str, str] = {}
        self.pull_seconds = 0.0
        self.pull_cpu = 0.0
        self._wrap_pull()

    def now(self):
        """The trackers' latest change time: the escalations are recent, as in production (an
        SLA over the months between the trackers' clock and today's would be the cost measured)."""
        return max(tracker.clock for tracker in self.trackers.values())

    def _wrap_pull(self) -> None:
        pull = self.engine.pull

        def timed(*args, **kwargs):
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return pull(*args, **kwargs)
            finally:
                self.pull_seconds += time.perf_counter() - started
                self.pull_cpu += time.process_time() - cpu
        self.engine.pull = timed

    def put(self, key: str, value: float | int | str) -> None:
        self.lines[key] = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{key}={self.lines[key]}", flush=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        # CPU time, not wall: on a shared machine the wall clock counts other processes' turns
        profiler = cProfile.Profile(time.process_time) if self.profile else None
        if profiler:
            profiler.enable()
        try:
            yield
        finally:
            if profiler:
                profiler.disable()
                _print_profile(name, profiler)

    def settle(self, max_cycles: int = 12) -> tuple[int, int]:
        """Cycles until nothing changes and nothing is applied; (cycles, records pulled)."""
        pulled = 0
        for cycles in range(1, max_cycles + 1):
            report = self.engine.run_cycle()
            pulled += report.pulled
            if report.connector_errors or report.actions_dead:
                raise SystemExit(f"bench cycle failed: {report.as_dict()}")
            if report.changed == 0 and report.actions_done == 0:
                return cycles, pulled
        raise SystemExit(f"not settled after {max_cycles} cycles")

    def measured(self, name: str, n: int) -> int:
        """Run the first cycle (its pull timed) then settle; print the phase's figures."""
        before = self.sql.snapshot()
        self.pull_seconds = self.pull_cpu = 0.0
        started, cpu = time.perf_counter(), time.process_time()
        with self.phase(name):
            first = self.engine.run_cycle()
            first_pull, first_cpu = self.pull_seconds, self.pull_cpu
            cycles, pulled = self.settle()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        statements, commits = (a - b for a, b in zip(self.sql.snapshot(), before))
        pulled += first.pulled
        per = "escalations" if name == "first_sync" else "records"
        self.put(f"{name}.{per}_per_s", n / first_pull)
        self.put(f"{name}.settled_{per}_per_s", n / elapsed)
        self.put(f"{name}.{per}_per_cpu_s", n / first_cpu)  # the same, over this process's CPU
        self.put(f"{name}.settled_{per}_per_cpu_s", n / cpu)  # time (others share the machine)
        self.put(f"{name}.cycles", cycles + 1)
        self.put(f"{name}.statements_per_record", statements / max(1, pulled))
        self.put(f"{name}.commits_per_record", commits / max(1, pulled))
        return pulled

    def run(self, n: int) -> None:
        self.put("n", n)
        self.put("store", self.store.engine.dialect.name)
        start_sql = self.sql.snapshot()
        zendesk = self.trackers["zendesk"]
        for i in range(n):
            zendesk.put(ticket(i))
        pulled = self.measured("first_sync", n)
        mirrors = self.trackers["azure_devops"]
        if len(mirrors.records) != n or len(self.trackers["jira"].records) != n:
            raise SystemExit(f"expected {n} mirrors in each tier 2 tracker")
        for remote_id in list(mirrors.records):
            mirrors.edit(remote_id, **{"System.State": "Actively Working"})
        pulled += self.measured("update_wave", n)
        statements, commits = (a - b for a, b in zip(self.sql.snapshot(), start_sql))
        self.put("sql.statements_per_record", statements / pulled)
        self.put("sql.commits_per_record", commits / pulled)
        self.put("sql.statements_per_escalation", statements / (2 * n))
        self.put("sql.commits_per_escalation", commits / (2 * n))
        self.ignored(n)
        base, base_cpu = self.idle()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.put("rss_peak_mb", peak)
        self.put("store.bytes_per_escalation", self.size() / n)
        self.idle_fresh()
        # the in-memory trackers stand in for the vendors' servers: their records are in this
        # process only because the bench has no HTTP; tiersync's own peak is the rest
        self.put("rss_peak_mb_without_trackers", peak - float(self.lines["memory.trackers_mb"]))
        self.idle_due(n, base, base_cpu)

    def run_pulls(self, n: int) -> None:
        """``--pull-only``: the pulls alone (no outbox): N escalations opened with their mirrors
        queued, then N tickets ignored, each timed with its SQL per record."""
        self.put("n", n)
        self.put("store", self.store.engine.dialect.name)
        zendesk = self.trackers["zendesk"]
        for phase, escalate, per in (("first_sync", True, "escalations"),
                                     ("ignored", False, "records")):
            for i in range(n):
                zendesk.put(ticket(i if escalate else n + i, escalate=escalate))
            before = self.sql.snapshot()
            report = CycleReport(run_id=f"bench-{phase}")
            started, cpu = time.perf_counter(), time.process_time()
            with self.phase(phase):
                self.engine.pull("zendesk", report, lambda: False)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            statements, commits = (a - b for a, b in zip(self.sql.snapshot(), before))
            self.put(f"{phase}.{per}_per_s", n / elapsed)
            self.put(f"{phase}.{per}_per_cpu_s", n / cpu)
            self.put(f"{phase}.statements_per_record", statements / max(1, report.pulled))
            self.put(f"{phase}.commits_per_record", commits / max(1, report.pulled))
        self.put("rss_peak_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        self.put("store.bytes_per_escalation", self.size() / n)

    def ignored(self, n: int) -> None:
        zendesk = self.trackers["zendesk"]
        for i in range(n):
            zendesk.put(ticket(n + i, escalate=False))
        started, cpu = time.perf_counter(), time.process_time()
        with self.phase("ignored"):
            report = self.engine.run_cycle()
        self.put("ignored.records_per_s", n / (time.perf_counter() - started))
        self.put("ignored.records_per_cpu_s", n / (time.process_time() - cpu))
        if report.ignored < n:
            raise SystemExit(f"expected {n} ignored records, got {report.ignored}")

    def idle(self) -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        with self.phase("idle"):
            self.engine.run_cycle()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        self.put("idle.seconds", elapsed)
        self.put("idle.cpu_seconds", cpu)
        return elapsed, cpu

    def idle_due(self, n: int, base: float, base_cpu: float) -> None:
        """Idle cycles in which 1 % and then 10 % of the escalations are due for a periodic
        decision (their stored instant set to a second ago)."""
        for k in sorted({max(1, n // 100), max(1, n // 10)}):
            with self.store.transaction() as tx:
                ids = [row[0] for row in tx.execute(
                    select(t.escalations.c.id).order_by(t.escalations.c.id).limit(k))]
                tx.execute(update(t.escalations).where(t.escalations.c.id.in_(ids))
                           .values(next_decision_at=self.now() - timedelta(seconds=1)))
            started, cpu = time.perf_counter(), time.process_time()
            with self.phase(f"idle_due_{k}"):
                self.engine.run_cycle()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            self.put(f"idle.due_{k}.seconds", elapsed)
            self.put(f"idle.due_{k}.cpu_seconds", cpu)
            self.put(f"idle.due_{k}.ms_per_due", 1000 * max(0.0, elapsed - base) / k)
            self.put(f"idle.due_{k}.cpu_ms_per_due", 1000 * max(0.0, cpu - base_cpu) / k)

    def idle_fresh(self) -> None:
        """An idle cycle in a new process over the same store and trackers' state."""
        state = {name: {"records": c.records, "markers": c.markers, "seq": c.seq,
                        "changed": c.changed, "log": c._log, "clock": c.clock}
                 for name, c in self.trackers.items()}
        with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as f:
            pickle.dump(state, f)
        try:
            env = dict(os.environ, TIERSYNC_BENCH_STORE=str(self.store.url))  # not in argv
            out = subprocess.run([sys.executable, __file__, "--fresh-idle", f.name],
                                 capture_output=True, text=True, check=True, timeout=600,
                                 env=env).stdout
        finally:
            os.unlink(f.name)
        for line in out.splitlines():
            key, _, value = line.partition("=")
            self.put(key, float(value))

    def size(self) -> int:
        with self.store.engine.connect() as conn:
            if self.store.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                path = Path(self.store.engine.url.database)
                return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
            return conn.execute(text("SELECT pg_database_size(current_database())")).scalar()


def fresh_idle(state_file: str, url: str) -> None:
    """``--fresh-idle``: one idle cycle of a new engine (this process) over the store at ``url``
    and the trackers' state pickled in ``state_file``."""
    tracemalloc.start()  # what the trackers' state takes in memory, as loaded
    with open(state_file, "rb") as f:
        state = pickle.load(f)
    trackers_mb = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    bench = Bench(url, 100, False)
    for name, tracker in bench.trackers.items():
        saved = state[name]
        tracker.records, tracker.markers, tracker.seq = saved["records"], saved["markers"], saved["seq"]
        tracker.changed, tracker._log, tracker.clock = saved["changed"], saved["log"], saved["clock"]
    started, cpu = time.perf_counter(), time.process_time()
    report = bench.engine.run_cycle()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if report.pulled or report.changed or report.actions_done:
        raise SystemExit(f"the fresh idle cycle was not idle: {report.as_dict()}")
    print(f"memory.trackers_mb={trackers_mb:.2f}")
    print(f"idle.fresh_seconds={elapsed:.3f}")
    print(f"idle.fresh_cpu_seconds={cpu:.3f}")
    bench.store.close()


def _quick_clock(tracker: MemoryConnector) -> None:
    """Tracker time moves 10 ms per change (the in-memory tracker's default is a minute: at
    N = 10,000 days would pass, and SLA warnings would fire in the middle of a phase)."""
    def tick(seconds: int = 60):
        tracker.clock += timedelta(milliseconds=10)
        return tracker.clock
    tracker.tick = tick


def _print_profile(name: str, profiler: cProfile.Profile, top: int = 25) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        body = out.getvalue()
        start = body.find("   ncalls")
        print(f"--- profile {name} by {order} ---\n{body[start:]}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="escalations (and ignored tickets)")
    parser.add_argument("--store", help="store URL (default: a SQLite file in a temporary folder); "
                                        "a PostgreSQL database should be empty")
    parser.add_argument("--page-size", type=int, default=100, help="records per connector page")
    parser.add_argument("--profile", action="store_true", help="print each phase's top functions")
    parser.add_argument("--pull-only", action="store_true",
                        help="time the pulls alone (first sync queued, ignored), no outbox")
    parser.add_argument("--fresh-idle", help=argparse.SUPPRESS)  # the child of idle_fresh
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    collector.tune()  # as the command line does (core/collector.py)
    if args.fresh_idle:
        fresh_idle(args.fresh_idle, os.environ["TIERSYNC_BENCH_STORE"])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args.store or f"sqlite:///{tmp}/bench.db", args.page_size, args.profile)
        try:
            bench.run_pulls(args.n) if args.pull_only else bench.run(args.n)
        finally:
            bench.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
