"""Audit entries of one transaction, hashed in memory and inserted in one batch at its commit.

Rules:
- the chain's head row is read (and locked, FOR UPDATE) at a transaction's first append, as a
  single append did; each entry is hashed at once against the head held in memory, so the hash an
  append returns is final and the chain is the one a per-entry append would have written;
- the entries are inserted with one ``executemany`` and the head row updated once, just before
  the transaction commits (the connection's ``commit`` event), so they commit with the page;
- a savepoint rolled back drops the entries appended inside it (and the head they moved); a
  transaction rolled back drops all of them;
- anything that reads the chain in the same transaction (its head, a verification, a query)
  calls ``flush`` first and sees every entry appended so far.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.engine import Connection, Engine

from core import schema as t
from core.audit_schema import audit_chain

INFO_KEY = "tiersync.audit_batch"
MARKS_KEY = "tiersync.audit_marks"  # per open savepoint: the pending entries' mark when it began
_listening: "weakref.WeakSet[Engine]" = weakref.WeakSet()


@dataclass
class Pending:
    """The entries waiting for their transaction's commit, and the chain's head after them.
    ``keyed_from`` is -1 while the first keyed entry is one of these (its seq is not known yet)."""

    count: int
    head: str
    keyed_from: int | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    keyed: list[bool] = field(default_factory=list)  # per row: hashed with the key

    def add(self, row: dict[str, Any], digest: str, keyed: bool) -> None:
        self.rows.append(row)
        self.keyed.append(keyed)
        self.count += 1
        self.head = digest
        if keyed and self.keyed_from is None:
            self.keyed_from = -1

    def mark(self) -> tuple[int, str, int | None]:
        return len(self.rows), self.head, self.keyed_from

    def back_to(self, mark: tuple[int, str, int | None]) -> None:
        size, self.head, self.keyed_from = mark
        self.count -= len(self.rows) - size
        del self.rows[size:], self.keyed[size:]


def pending(tx: Connection) -> Pending:
    """The transaction's pending entries, reading (and locking) the chain's head the first time."""
    _listen(tx.engine)
    batch = tx.info.get(INFO_KEY)
    if batch is None:
        chain = tx.execute(select(audit_chain).where(audit_chain.c.id == 1).with_for_update()).first()
        batch = Pending(count=chain.count, head=chain.head, keyed_from=chain.keyed_from)
        tx.info[INFO_KEY] = batch
    return batch


def flush(tx: Connection) -> None:
    """Insert the pending entries in one statement and move the head row past them."""
    batch = tx.info.pop(INFO_KEY, None)
    marks = tx.info.get(MARKS_KEY, [])
    marks[:] = [None] * len(marks)  # an open savepoint rolled back now drops what follows
    if batch is None or not batch.rows:
        return
    seqs = tx.execute(insert(t.audit).returning(t.audit.c.seq, sort_by_parameter_order=True),
                      batch.rows).scalars().all()
    keyed_from = batch.keyed_from
    if keyed_from == -1:  # keyed from the first keyed entry of this batch on
        keyed_from = seqs[batch.keyed.index(True)]
    tx.execute(update(audit_chain).where(audit_chain.c.id == 1).values(
        count=batch.count, last_seq=seqs[-1], head=batch.head, keyed_from=keyed_from,
        updated_at=batch.rows[-1]["at"]))


def _drop(conn: Connection, *_args) -> None:
    conn.info.pop(INFO_KEY, None)
    conn.info.pop(MARKS_KEY, None)


def _savepoint(conn: Connection, *_args) -> None:
    batch = conn.info.get(INFO_KEY)
    conn.info.setdefault(MARKS_KEY, []).append(batch.mark() if batch is not None else None)


def _release(conn: Connection, *_args) -> None:
    marks = conn.info.get(MARKS_KEY)
    if marks:
        marks.pop()


def _rollback_savepoint(conn: Connection, *_args) -> None:
    """Entries appended since the savepoint go; all of them when none was pending before it."""
    marks = conn.info.get(MARKS_KEY)
    mark = marks.pop() if marks else None
    batch = conn.info.get(INFO_KEY)
    if batch is None:
        return
    if mark is None:
        conn.info.pop(INFO_KEY)
    else:
        batch.back_to(mark)


def _listen(engine: Engine) -> None:
    if engine in _listening:
        return
    _listening.add(engine)
    event.listen(engine, "commit", flush)
    event.listen(engine, "rollback", _drop)
    event.listen(engine, "begin", _drop)  # nothing left over from a connection closed unfinished
    event.listen(engine, "savepoint", _savepoint)
    event.listen(engine, "release_savepoint", _release)
    event.listen(engine, "rollback_savepoint", _rollback_savepoint)
