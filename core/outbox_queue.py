"""Comments queued by a transaction, inserted into the outbox together at its commit.

Rules:
- every comment carries a de-duplication key; one already queued (the outbox's unique key,
  ``ON CONFLICT DO NOTHING``), done and pruned since (``outbox_done_keys``) or queued earlier in
  the same transaction is not queued again, exactly as a single enqueue would decide;
- the rows are written just before the transaction commits (core/tx_buffer.py), after the
  updates and creates queued by the same plans, so an action's id still orders it after them;
- nothing in the pull reads pending comments back, so they need not be written earlier; the
  outbox applies them once the page has committed.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core import schema as t, tx_buffer
from core.store_exec import write

NAME = "outbox-comments"
CHUNK = 500  # keys per IN (...) lookup


class _Comments:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def mark(self) -> int:
        return len(self.rows)

    def back_to(self, mark: int) -> None:
        del self.rows[mark:]

    def flush(self, tx: Connection) -> None:
        first: dict[str, dict[str, Any]] = {}
        for row in self.rows:  # the first queued of a key, in the order they were queued
            first.setdefault(row["dedupe_key"], row)
        rows = list(first.values())
        pruned = _done_keys(tx, [row["dedupe_key"] for row in rows])
        rows = [row for row in rows if row["dedupe_key"] not in pruned]
        if rows:
            write(tx, _insert_new(tx.dialect.name), rows)


def queue_comment(tx: Connection, *, escalation_id: str, connector: str, payload: dict[str, Any],
                  dedupe_key: str, rule: str | None, now: datetime) -> None:
    """Queue a comment action (written at the commit; see the rules above)."""
    tx_buffer.buffer(tx, NAME, _Comments).rows.append(dict(
        escalation_id=escalation_id, connector=connector, kind="comment", remote_id=None,
        payload=payload, dedupe_key=dedupe_key, rule=rule, state="pending", attempts=0,
        next_attempt_at=now, created_at=now, updated_at=now, last_error=None, result=None))


@lru_cache(maxsize=4)
def _insert_new(dialect: str):
    """INSERT of comments that a queued one with the same de-duplication key refuses."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(t.outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])


def _done_keys(tx: Connection, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        found.update(tx.execute(select(t.done_keys.c.dedupe_key).where(
            t.done_keys.c.dedupe_key.in_(keys[start:start + CHUNK]))).scalars())
    return found
