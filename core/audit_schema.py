"""Tables of the audit trail beyond the log itself (created by a migration in core/schema.py).

- ``audit_chain``: one row, the chain's recorded head: how many entries were ever appended, the
  last entry's seq and hash, from which seq entries are keyed (HMAC), and what pruning removed
  (through which seq, how many, and the hash the remaining chain continues from). Appends update
  it in the same transaction, so it also serialises writers of the chain.
- ``field_sources``: per escalation and model field, where its current value came from (tracker
  record and version, mapping entry or policy rule, run); read when a value is written to a
  tracker, so that ``tiersync trace`` can name the source of every value.
"""
from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text, text
from sqlalchemy.engine import Connection

from core.schema import UTC, metadata

audit_chain = Table(
    "audit_chain", metadata,
    Column("id", Integer, primary_key=True),
    Column("count", Integer, nullable=False),  # entries ever appended (pruned ones included)
    Column("last_seq", Integer),
    Column("head", String(64), nullable=False),
    Column("keyed_from", Integer),  # first seq hashed with HMAC (TIERSYNC_AUDIT_KEY)
    Column("pruned_through", Integer),  # last seq removed by pruning
    Column("pruned_count", Integer, nullable=False, default=0),
    Column("anchor", String(64)),  # hash of the last pruned entry: the chain goes on from it
    Column("updated_at", UTC),
)

field_sources = Table(
    "field_sources", metadata,
    Column("escalation_id", String(40), primary_key=True),
    Column("field", String(128), primary_key=True),  # model field, or "*" for the latest change
    Column("tracker", String(64)),
    Column("remote_id", String(128)),
    Column("remote_version", String(64)),
    Column("escalation_version", Integer, nullable=False),
    Column("mapping", String(255)),
    Column("entry", Text),  # mapping entry, e.g. "fields.severity"
    Column("rule", Text),  # policy rule(s) that set it, or "mapping"
    Column("run_id", String(40)),
    Column("at", UTC, nullable=False),
)

INDEXES = [
    "CREATE INDEX IF NOT EXISTS ix_audit_record_seq ON audit (tracker, remote_id, seq)",
    "CREATE INDEX IF NOT EXISTS ix_audit_escalation_seq ON audit (escalation_id, seq)",
    "CREATE INDEX IF NOT EXISTS ix_audit_action_at ON audit (action, at)",
    "CREATE INDEX IF NOT EXISTS ix_history_at ON escalation_history (at)",
    "CREATE INDEX IF NOT EXISTS ix_escalations_created ON escalations (created_at)",
]


def migrate_audit_trail(conn: Connection) -> None:
    """Create the tables and indexes; record the head of an existing (unkeyed) chain."""
    metadata.create_all(conn, tables=[audit_chain, field_sources])
    for statement in INDEXES:
        conn.execute(text(statement))
    count, last_seq = conn.execute(text("SELECT COUNT(*), MAX(seq) FROM audit")).one()
    head = conn.execute(text("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")).scalar()
    conn.execute(audit_chain.insert().values(id=1, count=count, last_seq=last_seq,
                                             head=head or "0" * 64, pruned_count=0))
