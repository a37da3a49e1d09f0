"""Sending what a hint pass queued: each tracker's actions in a thread of its own.

Rules:
- the due actions of the hinted escalations are claimed first (core/shared.py), so another
  daemon sharing the store never sends them too; every claim is released at the end;
- each target tracker's actions go in a thread of their own (as the lanes do, core/lanes.py):
  a new escalation's Azure DevOps item is not created after, but beside, its Jira issue, and a
  slow tracker delays only its own actions (``engine.concurrent_pulls: false``: one by one);
- per tracker: creates first (a new mirror does not wait for the write-back to its origin),
  then oldest first; order per record kept: an action left pending holds the record's later
  actions back;
- every action is sent under its tracker's send lock, as stored at that moment (a lane may
  have tried it meanwhile), and only while this daemon's lease lives.
"""
from __future__ import annotations

import contextvars
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

log = logging.getLogger("tiersync.hints")


class Steps:
    """How long each step of a hint pass took, for its log line (bench/latency.py's profile)."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.marks: list[str] = []

    def done(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.marks.append(f"{name} {now - since:.3f}s")  # list.append is atomic across threads
        return now

    def line(self) -> str:
        return f"{time.monotonic() - self.began:.3f}s: " + ", ".join(self.marks)


def send_hinted(engine: Any, escalation_ids: set[str], report: Any, stop: Callable[[], bool],
                steps: Steps) -> None:
    """Claim and send the due actions of these escalations (see the module rules)."""
    from core.lanes import merge_into
    from core.shared import claim, release
    if not escalation_ids:
        return
    with engine.store.transaction() as tx:
        due = claim(tx, engine.worker_id, engine.clock(), engine.settings.outbox_batch,
                    escalations=sorted(escalation_ids))
    by_tracker: dict[str, list[Any]] = {}
    for action in sorted(due, key=lambda a: (a.kind != "create", a.id)):
        by_tracker.setdefault(action.connector, []).append(action)
    try:
        if len(by_tracker) < 2 or not engine.settings.concurrent_pulls:
            for actions in by_tracker.values():
                _send_tracker(engine, actions, report, stop, steps)
            return
        parts = {name: type(report)(run_id=report.run_id) for name in by_tracker}
        with ThreadPoolExecutor(len(by_tracker), thread_name_prefix="hint-send") as pool:
            futures = [pool.submit(contextvars.copy_context().run, _send_tracker, engine, actions,
                                   parts[name], stop, steps) for name, actions in by_tracker.items()]
            for future in futures:
                future.result()
        for part in parts.values():
            merge_into(report, part)
    finally:
        with engine.store.transaction() as tx:
            release(tx, engine.worker_id, [a.id for a in due])


def _send_tracker(engine: Any, actions: list[Any], report: Any, stop: Callable[[], bool],
                  steps: Steps) -> None:
    """One tracker's claimed actions, in order; a record's action left pending holds its later
    ones back."""
    from core.lanes import send_lock
    from core.outbox import OutboxApplier
    applier = OutboxApplier(engine)
    held: set[str] = set()
    try:
        for action in actions:
            if stop():
                report.stopped_early = True
                return
            if action.escalation_id in held:
                continue
            started = time.monotonic()
            with send_lock(engine, action.connector):  # a lane may be sending to it just now
                if time.monotonic() - started > 0.01:
                    started = steps.done(f"send lock {action.connector}", started)
                fresh = _pending(engine, action.id)  # as it is now (a lane may have tried it)
                if fresh is not None and (engine.worker is None or engine.worker.alive()):
                    applier.apply_one(fresh, report)
            steps.done(f"{action.kind} {action.connector}", started)
            if _pending(engine, action.id) is not None:
                held.add(action.escalation_id)  # later actions of that record wait for it
    finally:
        applier.files.close()


def _pending(engine: Any, action_id: int) -> Any:
    """The action as stored now, while it is still pending (else None)."""
    with engine.store.transaction() as tx:
        row = engine.store.get_action(tx, action_id)
    return row if row is not None and row.state == "pending" else None
