"""Connectors pulled concurrently inside one daemon, and the rate budget every daemon shares.

Rules:
- each connector has its own lane (a thread with its own store connections): pull it from its
  cursor, then send the actions queued for it; a slow or rate-limited tracker delays only its
  own lane, the others' records go through at their own pace;
- a lane pulls only while this daemon holds the connector's pull lease (core/worker.py), and
  not while the tracker's shared ``Retry-After`` runs (``rate_limits`` in the store);
- a 429 seen by any daemon blocks that tracker for every daemon until its ``Retry-After``
  (``rate_limit_seconds`` when it gave none); a 429 of the change feed's own limit (scope
  ``PULL``: Zendesk's incremental exports, 10 requests a minute) blocks only the pulls, and the
  tracker's actions and hinted reads go on;
- each lane counts into its own report; the cycle's report is their sum;
- a lane runs in the cycle's context (its run id is in every log line and audit entry);
- one thread at a time sends a tracker's actions in a process (``send_lock``): a lane's outbox
  pass and the webhook hint thread never send one action twice.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import timedelta
from typing import TYPE_CHECKING, Callable

from core import leases
from core.errors import PULL, RateLimited

if TYPE_CHECKING:
    from core.engine import CycleReport, SyncEngine

log = logging.getLogger("tiersync.lanes")


def run_lanes(engine: "SyncEngine", report: "CycleReport", stop: Callable[[], bool],
              dry_run: bool) -> None:
    """Every connector's lane; at the same time unless dry-running or told otherwise."""
    names = list(engine.connectors)
    if dry_run or not engine.settings.concurrent_pulls or len(names) < 2:
        for name in names:
            if stop():
                report.stopped_early = True
                return
            _lane(engine, name, report, stop, dry_run)
        return
    lanes = {name: _sub_report(report) for name in names}
    with ThreadPoolExecutor(len(names), thread_name_prefix="lane") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _lane, engine, name, lanes[name],
                               stop, dry_run) for name in names]
        for future in futures:
            future.result()
    for lane in lanes.values():
        merge_into(report, lane)


def _lane(engine: "SyncEngine", name: str, report: "CycleReport", stop: Callable[[], bool],
          dry_run: bool) -> None:
    blocked = name in rate_blocked(engine)
    if blocked or pull_blocked(engine, name):
        report.rate_limited += 1
    elif engine.may_pull(name):
        report.pulled_from.append(name)
        engine.pull(name, report, stop)
    if not dry_run and not blocked and not stop():
        from core.outbox import OutboxApplier
        with send_lock(engine, name):
            OutboxApplier(engine).apply(report, stop, connector=name)


def send_all(engine: "SyncEngine", report: "CycleReport", stop: Callable[[], bool]) -> None:
    """The cycle's last outbox pass (what re-evaluation queued, retries now due), tracker by
    tracker under each one's send lock."""
    from core.outbox import OutboxApplier
    applier = OutboxApplier(engine)
    for name in engine.connectors:
        if stop():
            return
        with send_lock(engine, name):
            applier.apply(report, stop, connector=name)


_SEND_LOCKS: "weakref.WeakKeyDictionary[SyncEngine, dict[str, threading.Lock]]" = \
    weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def send_lock(engine: "SyncEngine", name: str) -> threading.Lock:
    """The lock held while this process sends actions to tracker ``name``."""
    with _GUARD:
        return _SEND_LOCKS.setdefault(engine, {}).setdefault(name, threading.Lock())


def _sub_report(report: "CycleReport") -> "CycleReport":
    return type(report)(run_id=report.run_id, dry_run=report.dry_run)


def merge_into(total: "CycleReport", part: "CycleReport") -> None:
    """Add a lane's counts to the cycle's report."""
    for f in fields(total):
        mine, theirs = getattr(total, f.name), getattr(part, f.name)
        if isinstance(mine, bool):
            setattr(total, f.name, mine or theirs)
        elif isinstance(mine, int):
            setattr(total, f.name, mine + theirs)
        elif isinstance(mine, list):
            mine.extend(theirs)


# -- the shared rate budget --------------------------------------------------------------------
def note_rate_limited(engine: "SyncEngine", name: str, exc: RateLimited) -> None:
    """Write the tracker's Retry-After to the store, for every daemon (and lane) to honour."""
    if engine.store.dry_run:
        return
    wait = exc.retry_after if exc.retry_after is not None else engine.settings.rate_limit_seconds
    now = engine.clock()
    key = _pull_key(name) if exc.scope == PULL else name
    with engine.store.transaction() as tx:
        leases.note_rate_limited(tx, key, now + timedelta(seconds=wait), str(exc), now)
    what = "its change feed" if exc.scope == PULL else "it"
    log.warning("%s is rate limited: every daemon leaves %s alone for %.1fs", name, what, wait)


def pull_blocked(engine: "SyncEngine", name: str) -> bool:
    """Whether the change feed of tracker ``name`` waits on its own limit's Retry-After."""
    with engine.store.transaction() as tx:
        return leases.is_blocked(tx, _pull_key(name), engine.clock())


def _pull_key(name: str) -> str:
    return f"{name}:pull"


def rate_blocked(engine: "SyncEngine") -> set[str]:
    """Trackers whose shared Retry-After has not run out yet."""
    now = engine.clock()
    with engine.store.transaction() as tx:
        return leases.blocked_among(tx, list(engine.connectors), now)
