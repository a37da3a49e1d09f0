"""`tiersync prune`: a bounded store.

Rules (what is removed when older than the cut-off, by its last update):
- outbox rows that are finished (``done``, ``superseded``); their de-duplication keys are kept
  in ``outbox_done_keys``, so a create, comment or note is never queued twice;
- history changes (core.history), except each escalation's newest one;
- resolved quarantine entries and finished runs.
Kept whatever their age: escalations (the latest state), links and cursors, pending actions,
dead letters, unresolved quarantine entries, and the whole audit log, whose hash chain so stays
verifiable.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from core import schema as t
from core.history import prune_history

FINISHED = ("done", "superseded")


@dataclass(frozen=True)
class PruneResult:
    outbox: int
    history: int
    quarantine: int
    runs: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def prune(tx: Connection, before: datetime, now: datetime) -> PruneResult:
    """Remove what the engine no longer needs from before ``before`` (see the module rules)."""
    return PruneResult(outbox=_prune_outbox(tx, before, now), history=prune_history(tx, before),
                       quarantine=_prune_quarantine(tx, before), runs=_prune_runs(tx, before))


def _prune_outbox(tx: Connection, before: datetime, now: datetime) -> int:
    old = (t.outbox.c.state.in_(FINISHED)) & (t.outbox.c.updated_at < before)
    keys = tx.execute(select(t.outbox.c.dedupe_key).where(old & t.outbox.c.dedupe_key.is_not(None))
                      ).scalars().all()
    known = set(tx.execute(select(t.done_keys.c.dedupe_key).where(
        t.done_keys.c.dedupe_key.in_(keys))).scalars().all()) if keys else set()
    fresh = [{"dedupe_key": k, "done_at": now} for k in keys if k not in known]
    if fresh:
        tx.execute(insert(t.done_keys), fresh)
    return tx.execute(delete(t.outbox).where(old)).rowcount


def _prune_quarantine(tx: Connection, before: datetime) -> int:
    return tx.execute(delete(t.quarantine).where(t.quarantine.c.resolved_at.is_not(None)
                                                 & (t.quarantine.c.resolved_at < before))).rowcount


def _prune_runs(tx: Connection, before: datetime) -> int:
    return tx.execute(delete(t.runs).where(t.runs.c.finished_at.is_not(None)
                                           & (t.runs.c.finished_at < before))).rowcount


def vacuum(store) -> None:
    """Give the freed pages back to the file system (SQLite; PostgreSQL's autovacuum does it)."""
    if store.engine.dialect.name == "sqlite":
        raw = store.engine.raw_connection()  # outside any transaction, as VACUUM needs
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
