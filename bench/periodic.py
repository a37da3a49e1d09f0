"""Cost of the periodic re-decision of open escalations (issue 11 item 6).

    python bench/periodic.py --n 1000 --n 10000

In-memory connectors, SQLite store, the shipped policy (mappings/policy.yaml). A few template
escalations are synced through the engine (each with its Azure DevOps mirror); the store is then
filled with N linked copies of them (bulk insert), 1 % of which are set 42.5 minutes earlier so
that their acknowledgement SLA warning comes due during the run (their tracker records
are copied too, so the warning notes they post land). Printed, per N:

- ``periodic.first_pass_seconds``: the first periodic pass, which decides every escalation;
- ``periodic.idle_seconds``: a pass a little over ``reevaluate_seconds`` later, nothing changed;
- ``periodic.fresh_process_idle_seconds``: the same from a new engine (a process start);
- ``periodic.due_1pct_seconds``: a pass when 1 % of the escalations have a warning due;
- ``periodic.due_1pct_decided``: how many escalations that pass wrote a decision for;
- ``cycle.idle_seconds``: a whole idle ``run_cycle`` (pull, periodic pass, outbox) afterwards,
  again a little over ``reevaluate_seconds`` after the one before.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select  # noqa: E402

from connectors.memory import MemoryConnector  # noqa: E402
from core import schema as t  # noqa: E402
from core.engine import CycleReport, SyncEngine  # noqa: E402
from core.mapping import load_mapping  # noqa: E402
from core.policy import load_policy  # noqa: E402
from core.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 3, 19, 0, tzinfo=timezone.utc)  # Tuesday 11:00 Pacific
EARLIER = timedelta(minutes=42, seconds=30)  # the due 1 %: warning at T0 + 2.5 min
TEMPLATES = 10
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def ticket(n: int) -> dict[str, Any]:
    return {
        "subject": f"{12345678901000 + n} - Bench case {n}", "description": "Portal returns 403.",
        "status": "new", "priority": "high", "tags": ["escalate_tier2"],
        "requester.email": "support@partner.example", "requester.name": "Partner Support",
        "assignee.email": "agent1@tier1.example", "custom_fields.360010000002": "sev_2",
        "custom_fields.360010000003": "plan_enterprise",
        "custom_fields.360010000004": "Technical",
        "custom_fields.360010000005": "Azure Application Offer",
        "custom_fields.360010000001": f"{12345678901000 + n}", "organization.name": "Contoso Ltd",
        "custom_fields.360010000008": "SELLER-1", "custom_fields.360010000017": "Pat Doe",
        "custom_fields.360010000018": "pat@contoso.example", "custom_fields.360010000014": "scope_cloud"}


def make_engine(db: str, clock: Clock, trackers: dict[str, MemoryConnector] | None = None) -> SyncEngine:
    names = ("zendesk", "azure_devops", "jira")
    trackers = trackers or {name: MemoryConnector(name) for name in names}
    mappings = {name: load_mapping(ROOT / "mappings" / f"{name}.yaml") for name in names}
    store = Store(db)
    store.migrate()
    return SyncEngine(store, trackers, mappings, load_policy(ROOT / "mappings" / "policy.yaml"),
                      clock=clock)


def shifted(value: Any, by: timedelta) -> Any:
    """``value`` with every ISO timestamp in it moved by ``by``."""
    if isinstance(value, dict):
        return {key: shifted(item, by) for key, item in value.items()}
    if isinstance(value, list):
        return [shifted(item, by) for item in value]
    if isinstance(value, str) and ISO.match(value):
        return (datetime.fromisoformat(value) + by).isoformat()
    return value


def copy_rows(engine: SyncEngine, trackers: dict[str, MemoryConnector], n: int) -> None:
    """Fill the store with ``n`` linked copies of the template escalations."""
    with engine.store.transaction() as tx:
        templates = [dict(r._mapping) for r in tx.execute(select(t.escalations))]
        links = [dict(r._mapping) for r in tx.execute(select(t.links))]
    rows, link_rows = [], []
    for i in range(n):
        template = templates[i % len(templates)]
        new_id = f"{template['id'][:24]}-c{i:07d}"
        by = -EARLIER if i % 100 == 0 else timedelta(0)
        data = shifted({**template["data"], "id": new_id}, by)
        row = {**template, "id": new_id, "data": data}
        if "next_decision_at" in row:  # as just written: decided by the first pass
            row["next_decision_at"] = row["updated_at"]
        rows.append(row)
        for link in (l for l in links if l["escalation_id"] == template["id"]):
            remote_id = f"{link['remote_id']}-c{i}"
            link_rows.append({**link, "escalation_id": new_id, "remote_id": remote_id})
            tracker = trackers[link["tracker"]]
            tracker.records[remote_id] = replace(tracker.records[link["remote_id"]], id=remote_id)
    with engine.store.transaction() as tx:
        tx.execute(insert(t.escalations), rows)
        tx.execute(insert(t.links), link_rows)


def timed_pass(engine: SyncEngine) -> tuple[float, int]:
    report = CycleReport(run_id="bench")
    engine.planner.run_id = report.run_id
    started = time.perf_counter()
    engine.reevaluate(report, lambda: False)
    return time.perf_counter() - started, report.changed


def run(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        clock = Clock()
        trackers = {name: MemoryConnector(name) for name in ("zendesk", "azure_devops", "jira")}
        engine = make_engine(db, clock, trackers)
        for tracker in trackers.values():
            tracker.clock = T0 - timedelta(minutes=1)  # its records change just before T0
        for i in range(TEMPLATES):
            trackers["zendesk"].put(ticket(i))
        engine.run_cycle()
        engine.run_cycle()
        copy_rows(engine, trackers, n)
        results: dict[str, float] = {}
        clock.now = T0 + timedelta(minutes=1)
        results["periodic.first_pass_seconds"], _ = timed_pass(engine)
        clock.now += timedelta(seconds=engine.settings.reevaluate_seconds + 1)
        results["periodic.idle_seconds"], _ = timed_pass(engine)
        fresh = make_engine(db, clock, trackers)
        results["periodic.fresh_process_idle_seconds"], _ = timed_pass(fresh)
        clock.now = T0 + timedelta(minutes=3, seconds=2)
        results["periodic.due_1pct_seconds"], decided = timed_pass(fresh)
        results["periodic.due_1pct_decided"] = decided
        clock.now += timedelta(seconds=1)
        fresh.run_cycle()  # sends the warnings
        clock.now += timedelta(seconds=1)
        fresh.run_cycle()  # reads back the notes it wrote (echoes)
        clock.now += timedelta(seconds=engine.settings.reevaluate_seconds + 1)
        started = time.perf_counter()
        fresh.run_cycle()
        results["cycle.idle_seconds"] = time.perf_counter() - started
        engine.store.close()
        fresh.store.close()
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append",
                        help="open escalations (repeatable; default 1000 and 10000)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for n in args.n or [1000, 10000]:
        print(f"n={n}")
        for name, value in run(n).items():
            print(f"{name}={value:.3f}" if isinstance(value, float) else f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
