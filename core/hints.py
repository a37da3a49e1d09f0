"""Webhooks as hints: which records to read now, and reading them through the normal pipeline.

Rules:
- A hint is only (tracker, record id). The webhook's body is never used as record data: the
  record is read from the tracker by id and goes through the same mapping, reconcile and
  policy stages as a polled record, in the daemon's one writer thread, so two webhooks for one
  new record never open two escalations (nor create two mirrors).
- Hints for a record already waiting coalesce: a burst of webhooks is one read.
- Polling stays the source of truth: a lost webhook only means the change waits for the next
  cycle; a hinted read moves no cursor.
- A hint pass sends only the actions of the escalations its records belong to (in queue order);
  the rest of the outbox is the polling cycle's, so a backlog never delays a hinted change.
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Callable

from core.errors import TiersyncError
from core.store import StoreConflict

log = logging.getLogger("tiersync.hints")


class HintQueue:
    """Record ids waiting to be read, per tracker; thread-safe, de-duplicating."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[str, dict[str, None]] = {}

    def add(self, tracker: str, remote_ids: list[str]) -> int:
        """Queue ids; returns how many were not already waiting (the rest coalesced)."""
        with self._cond:
            waiting = self._pending.setdefault(tracker, {})
            fresh = [rid for rid in remote_ids if rid not in waiting]
            waiting.update(dict.fromkeys(fresh))
            if fresh:
                self._cond.notify_all()
            return len(fresh)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a hint; True when one is waiting."""
        with self._cond:
            if not self._has_any():
                self._cond.wait(timeout)
            return self._has_any()

    def take(self) -> dict[str, list[str]]:
        with self._cond:
            taken = {name: list(ids) for name, ids in self._pending.items() if ids}
            self._pending.clear()
            return taken

    def depth(self) -> int:
        with self._cond:
            return sum(len(ids) for ids in self._pending.values())

    def _has_any(self) -> bool:
        return any(self._pending.values())


def run_hints(engine, hints: dict[str, list[str]], stop: Callable[[], bool] = lambda: False,
              run_id: str | None = None):
    """Read the hinted records, reconcile them and push what follows; returns the CycleReport."""
    from core.engine import CycleReport
    from core.outbox import OutboxApplier
    report = CycleReport(run_id=run_id or "hint-" + uuid.uuid4().hex[:12])
    engine.planner.run_id = report.run_id
    with engine.store.transaction() as tx:
        engine.store.start_run(tx, report.run_id, "webhook", engine.clock())
    touched: set[str] = set()
    for name, remote_ids in hints.items():
        if name in engine.connectors and not stop():
            touched |= _read(engine, name, remote_ids, report)
    if not stop():
        _apply_for(engine, OutboxApplier(engine), touched, report, stop)
    with engine.store.transaction() as tx:
        engine.store.finish_run(tx, report.run_id, "ok" if report.exit_code == 0 else "partial",
                                report.as_dict(), engine.clock())
    return report


def _read(engine, name: str, remote_ids: list[str], report) -> set[str]:
    """Read and process the hinted records; the ids of the escalations they are linked to."""
    from core.relevance import complete_page
    try:
        records = engine.connectors[name].fetch_records(remote_ids)
        records = complete_page(engine, name, records)  # details of the relevant ones
    except TiersyncError as exc:
        report.connector_errors.append(f"{name}: {exc}")
        log.warning("reading hinted %s records %s failed (the next poll will catch up): %s",
                    name, ", ".join(remote_ids), exc, extra={"tracker": name})
        return set()
    try:
        with engine.store.transaction() as tx:
            engine.process_records(tx, name, records, report)
            links = engine.store.links_for(tx, name, [r.id for r in records])
    except (StoreConflict, TiersyncError) as exc:
        report.connector_errors.append(f"{name}: {exc}")
        log.warning("hinted %s records not processed (the next poll will catch up): %s", name, exc,
                    extra={"tracker": name})
        return set()
    return {link.escalation_id for link in links.values()}


def _apply_for(engine, applier, escalation_ids: set[str], report, stop: Callable[[], bool]) -> None:
    """Send the due actions of these escalations, oldest first, as the outbox would: claimed
    first (core/shared.py), so another daemon sharing the store never sends one of them too."""
    from core.lanes import send_lock
    from core.shared import claim, release
    if not escalation_ids:
        return
    with engine.store.transaction() as tx:
        due = claim(tx, engine.worker_id, engine.clock(), engine.settings.outbox_batch,
                    escalations=sorted(escalation_ids), skip=applier.blocked)
    held: set[tuple[str, str]] = set()
    try:
        for action in due:
            group = (action.escalation_id, action.connector)
            if stop():
                report.stopped_early = True
                return
            if group in held or (engine.worker is not None and not engine.worker.alive()):
                continue
            with send_lock(engine, action.connector):  # a lane may be sending to it just now
                if _still_pending(engine, action.id):
                    applier.apply_one(action, report)
            if _still_pending(engine, action.id):
                held.add(group)  # later actions of that record wait for it
    finally:
        with engine.store.transaction() as tx:
            release(tx, engine.worker_id, [a.id for a in due])


def _still_pending(engine, action_id: int) -> bool:
    with engine.store.transaction() as tx:
        row = engine.store.get_action(tx, action_id)
    return row is not None and row.state == "pending"
