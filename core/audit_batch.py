"""Audit entries of one transaction, hashed in memory and inserted in one batch at its commit.

Rules:
- the chain's head row is read (and locked, FOR UPDATE) at a transaction's first append, as a
  single append did; each entry is hashed at once against the head held in memory, so the hash an
  append returns is final and the chain is the one a per-entry append would have written;
- the entries are inserted with one ``executemany`` and the head row updated once, just before
  the transaction commits (core/tx_buffer.py), so they commit with the page;
- a savepoint rolled back drops the entries appended inside it (and the head they moved); a
  transaction rolled back drops all of them;
- anything that reads the chain in the same transaction (its head, a verification, a query)
  calls ``flush`` first and sees every entry appended so far.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from core import schema as t, tx_buffer
from core.audit_schema import audit_chain
from core.store_exec import write

NAME = "audit"
# built once (core/store_sql.py): a transaction's first append and its flush run these
INSERT = insert(t.audit)
LAST_SEQ = select(func.max(t.audit.c.seq))
FIRST_KEYED = select(t.audit.c.seq).where((t.audit.c.seq > bindparam("b_after"))
                                          & (t.audit.c.hash == bindparam("b_hash"))) \
    .order_by(t.audit.c.seq)
UPDATE_HEAD = update(audit_chain).where(audit_chain.c.id == 1)
HEAD = select(audit_chain).where(audit_chain.c.id == 1).with_for_update()


@dataclass
class Pending:
    """The entries waiting for their transaction's commit, and the chain's head after them.
    ``keyed_from`` is -1 while the first keyed entry is one of these (its seq is not known yet)."""

    count: int
    head: str
    keyed_from: int | None
    last_seq: int | None
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

    def flush(self, tx: Connection) -> None:
        """Insert the entries in one statement and move the head row past them. Their seqs are
        read back by the primary key: the newest one, and the first keyed one when this batch
        starts the keyed part of the chain (the head row's lock keeps other appenders out)."""
        if not self.rows:
            return
        write(tx, INSERT, self.rows)
        last_seq = tx.execute(LAST_SEQ).scalar()
        keyed_from = self.keyed_from
        if keyed_from == -1:  # keyed from the first keyed entry of this batch on
            first = self.rows[self.keyed.index(True)]["hash"]
            keyed_from = tx.execute(FIRST_KEYED, {"b_after": self.last_seq or 0,
                                                  "b_hash": first}).scalars().first()
        write(tx, UPDATE_HEAD, {"count": self.count, "last_seq": last_seq, "head": self.head,
                                 "keyed_from": keyed_from, "updated_at": self.rows[-1]["at"]})


def pending(tx: Connection) -> Pending:
    """The transaction's pending entries, reading (and locking) the chain's head the first time."""
    return tx_buffer.buffer(tx, NAME, lambda: _start(tx))


def peek(tx: Connection) -> Pending | None:
    return tx_buffer.peek(tx, NAME)


def _start(tx: Connection) -> Pending:
    chain = tx.execute(HEAD).first()
    return Pending(count=chain.count, head=chain.head, keyed_from=chain.keyed_from,
                   last_seq=chain.last_seq)


def flush(tx: Connection) -> None:
    """Insert the pending entries now (a reader of the chain in this transaction calls it)."""
    tx_buffer.flush(tx, NAME)
