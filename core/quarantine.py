"""The quarantine's lifecycle: entries clear themselves, and an admin can retry them.

Rules:
- a quarantined record that later syncs (it changed and now maps, or was retried) is resolved
  in the same transaction as its sync, with an audit entry ``quarantine-cleared``;
- ``retry`` re-reads each record from its tracker and runs it through today's mapping and
  policy, exactly as a pull would; the actions it queues are sent by the next run;
- a retried record that still fails stays quarantined, with today's reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from core import schema as t
from core.errors import TiersyncError
from core.redact import redact_text


@dataclass(frozen=True)
class RetryOutcome:
    entry_id: int
    record: str
    cleared: bool
    reason: str | None  # why it is still quarantined, when it is


def held(tx: Connection, connector: str, remote_ids: list[str]) -> set[str]:
    """Which of these records are quarantined and unresolved."""
    if not remote_ids:
        return set()
    rows = tx.execute(select(t.quarantine.c.remote_id).where(
        (t.quarantine.c.connector == connector) & t.quarantine.c.remote_id.in_(set(remote_ids))
        & t.quarantine.c.resolved_at.is_(None))).all()
    return {row.remote_id for row in rows}


def refresh_reason(tx: Connection, connector: str, remote_id: str, reason: str) -> None:
    """The same version failed again: keep today's reason on its open entry."""
    tx.execute(update(t.quarantine).where(
        (t.quarantine.c.connector == connector) & (t.quarantine.c.remote_id == remote_id)
        & t.quarantine.c.resolved_at.is_(None)).values(reason=redact_text(reason)))


def open_entries(tx: Connection, entry_id: int | None) -> list[dict]:
    query = select(t.quarantine).where(t.quarantine.c.resolved_at.is_(None))
    if entry_id is not None:
        query = query.where(t.quarantine.c.id == entry_id)
    return [dict(row._mapping) for row in tx.execute(query.order_by(t.quarantine.c.id)).all()]


def retry(engine, entry_id: int | None, report) -> list[RetryOutcome]:
    """Retry one entry (by id) or every open one (``entry_id`` None); see the module rules."""
    with engine.store.transaction() as tx:
        entries = open_entries(tx, entry_id)
    done: set[tuple[str, str]] = set()
    outcomes = []
    for entry in entries:
        key = (entry["connector"], entry["remote_id"])
        if key in done:
            continue
        done.add(key)
        outcomes.append(_retry_one(engine, entry, report))
    return outcomes


def _retry_one(engine, entry: dict, report) -> RetryOutcome:
    name, remote_id = entry["connector"], entry["remote_id"]
    ref = f"{name}:{remote_id}"
    connector = engine.connectors.get(name)
    if connector is None:
        return RetryOutcome(entry["id"], ref, False, f"no tracker named {name!r} is configured")
    try:
        record = connector.get(remote_id)
    except TiersyncError as exc:
        return RetryOutcome(entry["id"], ref, False, f"cannot read it: {exc}")
    with engine.store.transaction() as tx:
        engine.process_records(tx, name, [record], report)
    with engine.store.transaction() as tx:
        still = [e for e in open_entries(tx, None) if (e["connector"], e["remote_id"]) == (name, remote_id)]
    return RetryOutcome(entry["id"], ref, not still, still[-1]["reason"] if still else None)


def clear(tx: Connection, connector: str, remote_id: str, now: datetime) -> None:
    tx.execute(update(t.quarantine).where(
        (t.quarantine.c.connector == connector) & (t.quarantine.c.remote_id == remote_id)
        & t.quarantine.c.resolved_at.is_(None)).values(resolved_at=now))
