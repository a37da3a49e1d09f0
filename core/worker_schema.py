"""Tables that let several daemons share one store (created by a migration in core/schema.py).

- ``leases``: one row per thing held by one daemon at a time: ``pull:<connector>`` (who pulls
  that tracker) and ``worker:<id>`` (a daemon's own liveness). A row is held while
  ``expires_at`` lies ahead; its holder renews it by heartbeat, anyone may take an expired one.
- ``rate_limits``: per tracker, until when every daemon leaves it alone (its ``Retry-After``),
  and the last budget the tracker reported (``X-Rate-Limit-Remaining`` and the like).
- ``outbox.claimed_by``: the worker an action is in flight on; a claim counts while that
  worker's lease lives.
"""
from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, text
from sqlalchemy.engine import Connection

from core.schema import UTC, metadata

leases = Table(
    "leases", metadata,
    Column("name", String(128), primary_key=True),  # pull:<connector> | worker:<id>
    Column("holder", String(128), nullable=False),
    Column("acquired_at", UTC, nullable=False),
    Column("expires_at", UTC, nullable=False),
)

rate_limits = Table(
    "rate_limits", metadata,
    Column("tracker", String(64), primary_key=True),
    Column("blocked_until", UTC, nullable=False),
    Column("remaining", Integer),
    Column("reason", String(255)),
    Column("updated_at", UTC, nullable=False),
)


def migrate_workers(conn: Connection) -> None:
    metadata.create_all(conn, tables=[leases, rate_limits])
    conn.execute(text("ALTER TABLE outbox ADD COLUMN claimed_by VARCHAR(128)"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_outbox_group ON outbox "
                      "(escalation_id, connector, state, id)"))
