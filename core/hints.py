"""Webhooks as hints: which records to read now, and reading them through the normal pipeline.

Rules:
- A hint is only (tracker, record id). The webhook's body is never used as record data: the
  record is read from the tracker by id and goes through the same mapping, reconcile and
  policy stages as a polled record, in the daemon's one writer thread, so two webhooks for one
  new record never open two escalations (nor create two mirrors).
- Hints for a record already waiting coalesce: a burst of webhooks is one read.
- Polling stays the source of truth: a lost webhook only means the change waits for the next
  cycle; a hinted read moves no cursor.
- A hint pass sends only the actions of the escalations its records belong to (in queue order,
  each tracker's in a thread of its own: core/hint_send.py); the rest of the outbox is the
  polling cycle's, so a backlog never delays a hinted change.
"""
from __future__ import annotations

import logging
import threading
import time
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
    """Read the hinted records, reconcile them and push what follows; returns the CycleReport.
    The pass's steps and their durations are logged (``hint pass ... took``)."""
    from core.engine import CycleReport
    from core.hint_send import Steps, send_hinted
    report = CycleReport(run_id=run_id or "hint-" + uuid.uuid4().hex[:12])
    steps = Steps()
    engine.planner.run_id = report.run_id
    with engine.store.transaction() as tx:
        engine.store.start_run(tx, report.run_id, "webhook", engine.clock())
    touched: set[str] = set()
    for name, remote_ids in hints.items():
        if name in engine.connectors and not stop():
            touched |= _read(engine, name, remote_ids, report, steps)
    if not stop():
        send_hinted(engine, touched, report, stop, steps)
    with engine.store.transaction() as tx:
        engine.store.finish_run(tx, report.run_id, "ok" if report.exit_code == 0 else "partial",
                                report.as_dict(), engine.clock())
    log.info("hint pass %s took %s", report.run_id, steps.line(), extra={"run_id": report.run_id})
    return report


def _read(engine, name: str, remote_ids: list[str], report, steps) -> set[str]:
    """Read and process the hinted records; the ids of the escalations they are linked to."""
    from core.relevance import complete_page
    started = time.monotonic()
    try:
        records = engine.connectors[name].fetch_records(remote_ids)
        started = steps.done(f"read {name}", started)
        records = complete_page(engine, name, records)  # details of the relevant ones
        started = steps.done(f"details {name}", started)
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
    steps.done(f"process {name}", started)
    return {link.escalation_id for link in links.values()}
