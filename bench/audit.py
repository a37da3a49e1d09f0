"""Audit, trace, report and verify over a long log (issue 13: each query under 2 s at 1,000,000).

    python bench/audit.py --entries 1000000 [--workdir DIR] [--reuse]

Builds a SQLite store holding a year of escalations (one per ~50 audit entries), their version
history and a valid hash chain of ``--entries`` audit entries (opened, merged, policy, updated,
written …) by bulk insert (``--reuse`` keeps the store an earlier run built in ``--workdir``),
then prints ``name=value`` lines, each name suffixed with the size (``_1m`` for 1,000,000):

- in this process, the query and its output (what the indexes decide): ``audit_1m.seconds`` (one
  escalation, newest 200), ``audit_record_1m.seconds`` (one record), ``audit_newest_1m.seconds``,
  ``audit_day_export_1m.seconds`` (one day as CSV), ``trace_1m.seconds`` (one record),
  ``report_1m.seconds`` (one month, HTML with charts);
- ``*.cli_seconds``: the same commands end to end as a user runs them, a subprocess of the
  installed ``tiersync`` script (Python start-up and configuration loading included), with
  ``*.cli_cpu_seconds`` (user + system: what the wall time is on an idle machine, less I/O
  waits) and ``*.cli_max_rss_mb``, the process's peak memory: ``audit``, ``trace``, ``report``,
  ``startup`` (a command that reads nothing, for comparison), ``verify`` (``audit --verify``,
  the whole chain), and the streaming exports ``export_day_csv``, ``export_csv`` and
  ``export_jsonl`` (the whole log): an export's memory stays flat whatever its length.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.audit import GENESIS, _chain, _content  # noqa: E402
from core.model import Escalation, Link, LinkRole  # noqa: E402
from core.store import Store  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
PER_ESCALATION = 50
STATES = ["new", "actively_working", "solution_proposed", "closed"]
ACTIONS = ["merged", "policy", "queued-update", "updated", "written"]
COLUMNS = ["seq", "run_id", "at", "escalation_id", "tracker", "remote_id", "remote_version",
           "mapping", "rule", "action", "before", "after", "result", "prev_hash", "hash"]


def _db_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def escalation(n: int) -> tuple[Escalation, datetime]:
    opened = START + timedelta(minutes=n * 25)
    sla = {"acknowledgement": {"due_at": opened + timedelta(hours=1),
                               "met_at": opened + timedelta(minutes=30 + n % 60),
                               "on_time": n % 60 < 30},
           "first_solution": {"due_at": opened + timedelta(days=1)}}
    esc = Escalation(id=f"esc-{n:08d}", created_at=opened, updated_at=opened, severity=1 + n % 4,
                     support_plan=["developer", "professional", "enterprise"][n % 3],
                     queue=f"queue-{n % 5}", tier=["L1", "L2", "L3"][n % 3], sla=sla,
                     sr_number=f"{10_000_000_000_000 + n}", title=f"case {n}",
                     links=[Link(tracker="zendesk", remote_id=str(n), role=LinkRole.ORIGIN),
                            Link(tracker="azure_devops", remote_id=str(n))])
    return esc, opened


def write_escalations(db: sqlite3.Connection, count: int) -> None:
    escalations, history, links = [], [], []
    for n in range(count):
        esc, opened = escalation(n)
        for version, state in enumerate(STATES, start=1):
            at = opened + timedelta(hours=3 * (version - 1))
            data = json.dumps(dict(esc.model_dump(mode="json"), version=version, state=state))
            history.append((esc.id, version, "bench", _db_time(at), "run-bench", data))
        escalations.append((esc.id, 4, "closed", data, "{}", _db_time(opened), _db_time(at)))
        links += [("zendesk", str(n), esc.id, "origin", _db_time(opened)),
                  ("azure_devops", str(n), esc.id, "mirror", _db_time(opened))]
    db.executemany("INSERT INTO escalations (id, version, state, data, field_times, created_at, "
                   "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", escalations)
    db.executemany("INSERT INTO escalation_history (escalation_id, version, by, at, run_id, data) "
                   "VALUES (?, ?, ?, ?, ?, ?)", history)
    db.executemany("INSERT INTO links (tracker, remote_id, escalation_id, role, seen_comments, "
                   "updated_at) VALUES (?, ?, ?, ?, '[]', ?)", links)


def entry(seq: int) -> dict:
    n, k = divmod(seq - 1, PER_ESCALATION)
    action = ACTIONS[k % len(ACTIONS)] if k else "opened"
    value = {"value": f"{1 + k % 4} - High", "replaced": None, "field": "severity",
             "entry": "fields.severity", "source": f"zendesk:{n}", "source_version": str(k),
             "source_run": f"run-{seq // 500}", "rule": "mapping", "escalation_version": k,
             "source_mapping": "mappings/zendesk.yaml", "source_entry": "fields.severity"}
    tracker = "azure_devops" if action in ("updated", "written", "queued-update") else "zendesk"
    return {"seq": seq, "run_id": f"run-{seq // 500}",
            "at": START + timedelta(minutes=n * 25, seconds=k * 30), "escalation_id": f"esc-{n:08d}",
            "tracker": tracker, "remote_id": str(n), "remote_version": str(k),
            "mapping": f"mappings/{tracker}.yaml",
            "rule": "escalation.refused.too_early" if k == 7 else "mapping", "action": action,
            "before": None, "after": {"Microsoft.VSTS.Common.Severity": value}
            if action == "written" else {"severity": 1 + k % 4}, "result": f"version {k}"}


def write_chain(db: sqlite3.Connection, count: int) -> str:
    prev, batch = GENESIS, []
    for seq in range(1, count + 1):
        row = entry(seq)
        digest = _chain(prev, _content(row))
        batch.append((seq, row["run_id"], _db_time(row["at"]), row["escalation_id"], row["tracker"],
                      row["remote_id"], row["remote_version"], row["mapping"], row["rule"],
                      row["action"], json.dumps(row["before"]), json.dumps(row["after"]),
                      row["result"], prev, digest))
        prev = digest
        if len(batch) == 50_000:
            _flush(db, batch)
    _flush(db, batch)
    db.execute("UPDATE audit_chain SET count = ?, last_seq = ?, head = ?", (count, count, prev))
    return prev


def _flush(db: sqlite3.Connection, batch: list) -> None:
    db.executemany(f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                   batch)
    batch.clear()


def build(workdir: Path, entries: int) -> Path:
    path = workdir / "bench-audit.db"
    path.unlink(missing_ok=True)
    Store(f"sqlite:///{path}").migrate()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    write_escalations(db, max(1, entries // PER_ESCALATION))
    write_chain(db, entries)
    db.commit()
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    config = workdir / "tiersync.yaml"
    config.write_text(json.dumps({"store": f"sqlite:///{path}", "trackers": {
        name: {"kind": "memory", "base_url": "memory://", "mapping": name}
        for name in ("zendesk", "azure_devops", "jira")}}))
    return config


def timed_cli(name: str, config: Path, *args: str) -> None:
    """The whole command as a user runs it: process start, configuration, query, output (to
    /dev/null); its CPU time and peak resident memory (from wait4's rusage, Linux: KiB)."""
    tiersync = Path(sys.executable).with_name("tiersync")
    with open(os.devnull, "w") as sink, tempfile.NamedTemporaryFile("r") as figures:
        started = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", _LAUNCH, figures.name, str(tiersync), *args,
                                "--config", str(config)], stdout=sink, stderr=subprocess.PIPE,
                               text=True)
        seconds = time.perf_counter() - started
        returncode, cpu, max_rss_kib = json.loads(figures.read() or "[-1, 0, 0]")
    if child.returncode != 0 or returncode != 0:
        raise SystemExit(f"{name}: exit {returncode}: {child.stderr[-2000:]}")
    print(f"{name}.cli_seconds={seconds:.2f}\n{name}.cli_cpu_seconds="
          f"{cpu:.2f}\n{name}.cli_max_rss_mb={max_rss_kib / 1024:.0f}", flush=True)


# The command is started by a small launcher process rather than by this one: Linux carries a
# process's peak resident size across exec, and a child forked from this process (which holds
# the store it built, a few hundred MB) would report this process's peak as its own. The
# launcher is small, so its child's rusage is the command's own.
_LAUNCH = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime,
               usage.ru_maxrss], out)
"""


def _timed(name: str, work) -> None:
    """The query and its output in this process (what the indexes decide)."""
    started = time.perf_counter()
    count = work()
    print(f"{name}.seconds={time.perf_counter() - started:.3f}  ({name}.rows={count})", flush=True)


def in_process(store: Store, middle: int, workdir: Path, size: str) -> None:
    from core.audit import AuditLog
    from core.audit_export import write_csv
    from core.report_render import render
    from core.sla_report import build_report, parse_period
    from core.trace import trace
    log = AuditLog(key=None)

    def run(fn):
        with store.transaction() as tx:
            return fn(tx)
    sink = open(os.devnull, "w")

    def timed(name, work):
        _timed(f"{name}_{size}", work)
    timed("audit", lambda: run(lambda tx: len(list(log.query(
        tx, escalation_id=f"esc-{middle:08d}", limit=200, newest_first=True)))))
    timed("audit_record", lambda: run(lambda tx: len(list(log.query(
        tx, tracker="azure_devops", remote_id=str(middle), limit=200, newest_first=True)))))
    timed("audit_newest", lambda: run(lambda tx: len(list(log.query(tx, limit=200, newest_first=True)))))
    timed("audit_day_export", lambda: run(lambda tx: write_csv(log.query(
        tx, since=START + timedelta(days=180), until=START + timedelta(days=181)), sink)))
    timed("trace", lambda: run(lambda tx: len(list(trace(tx, "azure_devops", str(middle))))))
    period = parse_period("2026-06-01", "2026-06-30")
    now = datetime(2027, 1, 1, tzinfo=timezone.utc)
    timed("report", lambda: run(lambda tx: render(build_report(tx, period, now), "html",
                                                 workdir / "report.html") or 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--reuse", action="store_true", help="keep the store built by an earlier run")
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="tiersync-bench-audit-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = workdir / "tiersync.yaml"
    if not (options.reuse and config.exists()):
        config = build(workdir, options.entries)
    print(f"entries={options.entries}\nbuild.seconds={time.perf_counter() - started:.1f}", flush=True)
    middle = options.entries // PER_ESCALATION // 2
    store = Store(f"sqlite:///{workdir / 'bench-audit.db'}")
    size = label(options.entries)
    in_process(store, middle, workdir, size)
    store.close()
    commands = {
        "audit": ["audit", "--escalation", f"esc-{middle:08d}"],
        "trace": ["trace", f"azure_devops:{middle}"],
        "report": ["report", "--from", "2026-06-01", "--to", "2026-06-30",
                   "--out", str(workdir / "report-cli.html")],
        "startup": ["audit", "--limit", "1", "--action", "none"],
        "verify": ["audit", "--verify"],
        "export_day_csv": ["audit", "--format", "csv", "--since", "2026-06-30", "--until", "2026-07-01"],
        "export_csv": ["audit", "--format", "csv"],
        "export_jsonl": ["audit", "--format", "jsonl"],
    }
    for name, args in commands.items():
        timed_cli(f"{name}_{size}", config, *args)


def label(entries: int) -> str:
    """1000000 -> "1m", 20000 -> "20k": the size in the figures' names."""
    for unit, scale in (("m", 1_000_000), ("k", 1_000)):
        if entries >= scale and entries % scale == 0:
            return f"{entries // scale}{unit}"
    return str(entries)


if __name__ == "__main__":
    main()
