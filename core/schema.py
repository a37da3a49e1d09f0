"""Tables of the tiersync store and their ordered migrations (SQLAlchemy 2 Core).

The same definitions run on SQLite (the default) and PostgreSQL. ``schema_version`` holds the
number of the last migration applied; :data:`MIGRATIONS` are applied in order, each in its own
transaction, and never edited once released: a change to the schema is a new migration.
"""
from __future__ import annotations

from typing import Callable

from datetime import datetime, timezone

from sqlalchemy import (JSON, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text, UniqueConstraint, text)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on SQLite (which drops offsets) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()
UTC = UTCDateTime()

schema_version = Table(
    "schema_version", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

escalations = Table(
    "escalations", metadata,
    Column("id", String(40), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("state", String(32), nullable=False, index=True),
    Column("data", JSON, nullable=False),  # Escalation.model_dump(mode="json")
    Column("field_times", JSON, nullable=False, default=dict),  # field -> {tracker, at}
    Column("created_at", UTC, nullable=False),
    Column("updated_at", UTC, nullable=False),
)

history = Table(
    "escalation_history", metadata,
    Column("escalation_id", String(40), ForeignKey("escalations.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("by", String(64), nullable=False),
    Column("at", UTC, nullable=False),
    Column("run_id", String(40)),
    Column("data", JSON, nullable=False),
)

links = Table(
    "links", metadata,
    Column("tracker", String(64), primary_key=True),
    Column("remote_id", String(128), primary_key=True),
    Column("escalation_id", String(40), ForeignKey("escalations.id"), nullable=False, index=True),
    Column("key", String(128)),
    Column("url", Text),
    Column("role", String(16), nullable=False),
    Column("last_version", String(64)),  # remote version last seen or written
    Column("last_hash", String(64)),  # hash of the native view tiersync last saw/wrote there
    Column("last_data", JSON),  # that native view (flat), for change detection
    Column("seen_comments", JSON, nullable=False, default=list),
    Column("updated_at", UTC, nullable=False),
)

cursors = Table(
    "cursors", metadata,
    Column("connector", String(64), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("cursor", Text),
    Column("position", Integer, nullable=False, default=0),  # pages committed; only grows
    Column("updated_at", UTC, nullable=False),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("escalation_id", String(40), nullable=False, index=True),
    Column("connector", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # create | update | comment
    Column("remote_id", String(128)),
    Column("payload", JSON, nullable=False),
    Column("dedupe_key", String(255), unique=True),  # idempotency key of creates, note keys
    Column("rule", String(128)),
    Column("state", String(16), nullable=False, default="pending"),  # pending|done|dead|superseded
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTC, nullable=False),
    Column("last_error", Text),
    Column("result", JSON),
    Column("created_at", UTC, nullable=False),
    Column("updated_at", UTC, nullable=False),
    Index("ix_outbox_due", "state", "next_attempt_at"),
)

quarantine = Table(
    "quarantine", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connector", String(64), nullable=False),
    Column("remote_id", String(128), nullable=False),
    Column("remote_version", String(64)),
    Column("reason", Text, nullable=False),
    Column("payload", JSON),  # redacted native view
    Column("run_id", String(40)),
    Column("created_at", UTC, nullable=False),
    Column("resolved_at", UTC),
    UniqueConstraint("connector", "remote_id", "remote_version", name="uq_quarantine_record"),
)

audit = Table(
    "audit", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False, index=True),
    Column("at", UTC, nullable=False, index=True),
    Column("escalation_id", String(40), index=True),
    Column("tracker", String(64)),
    Column("remote_id", String(128)),
    Column("remote_version", String(64)),
    Column("mapping", String(255)),
    Column("rule", String(128)),
    Column("action", String(64), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("result", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_record", "tracker", "remote_id"),
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(40), primary_key=True),
    Column("started_at", UTC, nullable=False),
    Column("finished_at", UTC),
    Column("mode", String(16), nullable=False),
    Column("status", String(16)),
    Column("stats", JSON),
)

V1_TABLES = [schema_version, escalations, history, links, cursors, outbox, quarantine, audit, runs]


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=V1_TABLES)


def _v2_outbox_connector_index(conn: Connection) -> None:
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_outbox_target ON outbox (connector, remote_id, state)"))


def _v3_audit_trail(conn: Connection) -> None:
    from core.audit_schema import migrate_audit_trail  # audit chain head, field sources, indexes
    migrate_audit_trail(conn)


# history as reverse patches (core.history): the row of version N holds the RFC 6902 patch that
# turns version N's data into version N-1's (NULL for the version that opened the escalation)
changes = Table(
    "escalation_changes", metadata,
    Column("escalation_id", String(40), ForeignKey("escalations.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("by", String(64), nullable=False),
    Column("at", UTC, nullable=False, index=True),
    Column("run_id", String(40)),
    Column("patch", JSON),
)

# de-duplication keys of outbox rows that `tiersync prune` removed: a create, comment or note is
# never queued twice, however old
done_keys = Table(
    "outbox_done_keys", metadata,
    Column("dedupe_key", String(255), primary_key=True),
    Column("done_at", UTC, nullable=False),
)


def _history_as_changes(conn: Connection) -> None:
    from core.history import convert_full_copies
    metadata.create_all(conn, tables=[changes, done_keys])
    convert_full_copies(conn)


def _redact_stored(conn: Connection) -> None:
    from core.redact_store import redact_stored
    redact_stored(conn)


def _shared_work(conn: Connection) -> None:
    from core.worker_schema import migrate_workers  # leases, shared rate limits, outbox claims
    migrate_workers(conn)


def _audit_action_seq_index(conn: Connection) -> None:
    # `audit --action X` (newest N, or an export) walks the entries of that action in chain
    # order; without it a rare action scanned the whole log (issue 13: queries over 1M entries)
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_audit_action_seq ON audit (action, seq)"))
    if conn.dialect.name == "sqlite" and conn.execute(text(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first():
        # a store ANALYZEd before has statistics for every index but this one; without them
        # SQLite would take it for `trace` (action = written) instead of the record's index
        conn.execute(text("ANALYZE ix_audit_action_seq"))



MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial tables", _v1),
    (2, "outbox index by target record", _v2_outbox_connector_index),
    (3, "audit chain head, field sources, audit query indexes", _v3_audit_trail),
    (4, "history as reverse patches; de-duplication keys of pruned outbox rows", _history_as_changes),
    (5, "credentials stored in plain text by earlier releases masked", _redact_stored),
    (6, "leases, shared rate limits and outbox claims for several daemons", _shared_work),
    (7, "audit index by action in chain order", _audit_action_seq_index),
]
LATEST = MIGRATIONS[-1][0]
