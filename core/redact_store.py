"""Migration: mask credentials that a store written by an earlier release holds in plain text.

Escalation data, the history's full copies (converted to patches by the previous migration, so
this masks the newest state and the patches alike), link snapshots, outbox payloads and errors,
and quarantine entries are redacted in place. A link's snapshot hash is cleared, so its next read
compares the redacted snapshot with the redacted record (nothing is copied again for it). The
audit log is left as written: its entries were redacted when appended, and rewriting them would
break the hash chain.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from core import schema as t
from core.redact import redact, redact_text


def redact_stored(conn: Connection) -> None:
    _redact_column(conn, t.escalations, [t.escalations.c.id], "data")
    _redact_column(conn, t.changes, [t.changes.c.escalation_id, t.changes.c.version], "patch")
    _redact_column(conn, t.history, [t.history.c.escalation_id, t.history.c.version], "data")
    _redact_column(conn, t.outbox, [t.outbox.c.id], "payload")
    _redact_column(conn, t.outbox, [t.outbox.c.id], "result")
    _redact_column(conn, t.outbox, [t.outbox.c.id], "last_error", text=True)
    _redact_column(conn, t.quarantine, [t.quarantine.c.id], "payload")
    _redact_column(conn, t.quarantine, [t.quarantine.c.id], "reason", text=True)
    for row in conn.execute(select(t.links.c.tracker, t.links.c.remote_id, t.links.c.last_data)).all():
        cleaned = redact(row.last_data)
        if cleaned != row.last_data:
            conn.execute(update(t.links).where((t.links.c.tracker == row.tracker)
                                               & (t.links.c.remote_id == row.remote_id))
                         .values(last_data=cleaned, last_hash=None))


def _redact_column(conn: Connection, table, keys: list, column: str, *, text: bool = False) -> None:
    for row in conn.execute(select(*keys, table.c[column])).all():
        value = row[-1]
        cleaned = redact_text(value) if text else redact(value)
        if cleaned != value:
            where = [key == row[i] for i, key in enumerate(keys)]
            clause = where[0]
            for extra in where[1:]:
                clause = clause & extra
            conn.execute(update(table).where(clause).values({column: cleaned}))
