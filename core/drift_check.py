"""`tiersync reconcile` and the daemon's periodic drift check.

Rules:
- ``reconcile`` reads every linked record of every open escalation from its tracker (one
  ``get`` each, optionally for one tracker only) and compares it with the escalation, field by
  field (core/drift.py): a field that differs while the record equals tiersync's snapshot is
  *drift*; one that differs because the record changed since the last pull is *changed*;
- with ``fix`` each differing record is reconciled as a pull would (changes made in the
  tracker are merged, drift gets an update with today's values), the outbox is applied, and
  the records are compared again: what still differs is reported as remaining;
- a linked record its tracker no longer has (deleted) is reported as missing: tiersync never
  recreates a record someone deleted;
- the light check (the daemon's, every ``daemon.drift_check_seconds``) reads no tracker: it
  compares the stored snapshots with the escalations and queues updates for drift only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from core.drift import Difference, differences, drifted_fields
from core.errors import NotFound, TiersyncError


@dataclass
class ReconcileResult:
    checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    remaining: list[Difference] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "tracker:id": linked, gone from the tracker
    unreadable: list[str] = field(default_factory=list)  # "tracker:id: error"
    fixed: bool = False


def _targets(engine, tracker: str | None):
    """(escalation, link) for every linked record of every open escalation."""
    for batch in engine.store.iter_escalations(open_only=True):
        with engine.store.transaction() as tx:
            links = engine.store.links_of(tx, [item.escalation.id for item in batch])
        for item in batch:
            for link in links[item.escalation.id]:
                if (tracker is None or link.tracker == tracker) and link.tracker in engine.connectors:
                    yield item.escalation, link


def compare(engine, tracker: str | None, result: ReconcileResult) -> list[tuple]:
    """Read and compare every target; returns (link, record) of those that differ."""
    differing = []
    for escalation, link in _targets(engine, tracker):
        try:
            record = engine.connectors[link.tracker].get(link.remote_id)
        except NotFound:
            result.missing.append(f"{link.tracker}:{link.key or link.remote_id} (escalation {escalation.id})")
            continue
        except TiersyncError as exc:
            result.unreadable.append(f"{link.tracker}:{link.remote_id}: {exc}")
            continue
        result.checked += 1
        found = differences(engine.mappings[link.tracker], escalation, link, record.data)
        if found:
            result.differences.extend(found)
            differing.append((link, record))
    return differing


def reconcile(engine, report, *, tracker: str | None = None, fix: bool = False,
              stop: Callable[[], bool] = lambda: False) -> ReconcileResult:
    """Compare (and with ``fix`` repair) every open escalation's records; see module rules."""
    result = ReconcileResult()
    differing = compare(engine, tracker, result)
    if not fix or not differing:
        return result
    for link, record in differing:
        with engine.store.transaction() as tx:
            engine.process_records(tx, link.tracker, [record], report)
            _force_plan(engine, tx, link, report)
    from core.outbox import OutboxApplier
    OutboxApplier(engine).apply(report, stop)
    again = ReconcileResult()
    compare(engine, tracker, again)
    result.remaining, result.fixed = again.differences, True
    return result


def _force_plan(engine, tx, link, report) -> None:
    """Queue an update with today's values for a record that still differs from its escalation."""
    stored = engine.store.get_escalation(tx, link.escalation_id)
    if stored is not None:
        links = engine.store.links_of(tx, [link.escalation_id])[link.escalation_id]
        engine.planner.plan(tx, stored.escalation, links, report.run_id)


def light_check(engine, report) -> int:
    """The daemon's periodic check against the stored snapshots; returns records repaired."""
    repaired = 0
    for batch in engine.store.iter_escalations(open_only=True):
        with engine.store.transaction() as tx:
            links = engine.store.links_of(tx, [item.escalation.id for item in batch])
            for item in batch:
                for link in links[item.escalation.id]:
                    mapping = engine.mappings.get(link.tracker)
                    if mapping is None or link.last_data is None:
                        continue
                    if drifted_fields(engine.store, tx, mapping, item.escalation, link):
                        engine.planner.plan(tx, item.escalation, [link], report.run_id)
                        repaired += 1
    report.drift_repaired += repaired
    return repaired
