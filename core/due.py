"""When each open escalation next needs a periodic decision, kept in the store.

Rules:
- ``escalations.next_decision_at`` (indexed) holds the instant; the periodic pass decides only
  the open escalations whose instant has passed, so its cost follows what is due, not what is
  open, in a long-running daemon as after a process start.
- Any write of an escalation sets it (core/store.py): by default to the write's time, so a
  changed escalation is decided again by the next pass; the engine, having just decided it,
  gives the policy's next instant instead. A closed escalation has none.
- After a periodic decision the instant is the policy's ``next_decision_at`` (pure, see
  core/policy/next_due.py); a policy without one is asked again after ``reevaluate_seconds``
  when it had nothing to say, at the next pass when it had.
- The instants hold for the rules they were computed with: when the policy's fingerprint
  differs from the one recorded here, every open escalation is due once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Column, Integer, String, Table, bindparam, inspect, select, text, update
from sqlalchemy.engine import Connection

from core import schema as t
from core.model import Escalation, State

CLOSED = [State.CLOSED.value, State.REJECTED.value]
# given for the next decision of a write: the write's own time (decided again by the next pass)
WRITE_TIME = datetime.min.replace(tzinfo=timezone.utc)

decision_schedule = Table(
    "decision_schedule", t.metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", String(64), nullable=False),  # fingerprint of the rules the instants follow
    Column("updated_at", t.UTC, nullable=False),
)


@dataclass(frozen=True)
class Scheduled:
    """The next decision of one escalation, valid for the version it was computed from."""

    escalation_id: str
    version: int
    at: datetime | None


def migrate(conn: Connection) -> None:
    """Add the column and its index; every open escalation is due at its last update."""
    columns = {column["name"] for column in inspect(conn).get_columns("escalations")}
    if "next_decision_at" not in columns:
        kind = t.UTC.impl.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE escalations ADD COLUMN next_decision_at {kind}"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_escalations_next_decision "
                      "ON escalations (next_decision_at)"))
    t.metadata.create_all(conn, tables=[decision_schedule])
    conn.execute(update(t.escalations).where(t.escalations.c.state.not_in(CLOSED))
                 .values(next_decision_at=t.escalations.c.updated_at))


def written(escalation: Escalation, at: datetime | None = WRITE_TIME) -> datetime | None:
    """The instant stored with a write: ``at`` as the engine gave it, or the write's time."""
    if not escalation.state.is_open:
        return None
    return escalation.updated_at if at is WRITE_TIME else at


def next_for(policy: Any, escalation: Escalation, now: datetime, *, quiet: bool = True,
             fallback_seconds: float = 60.0) -> datetime | None:
    """When ``escalation``, just decided at ``now``, next needs a decision (module rules)."""
    if not escalation.state.is_open:
        return None
    pure = getattr(policy, "next_decision_at", None)
    if pure is not None:
        return pure(escalation, now)
    return now + timedelta(seconds=fallback_seconds) if quiet else now


def fingerprint(policy: Any, fallback_seconds: float) -> str:
    found = getattr(policy, "fingerprint", None)
    if isinstance(found, str):
        return found
    return f"{type(policy).__module__}.{type(policy).__qualname__}/{fallback_seconds:g}"


def due_ids(tx: Connection, now: datetime) -> list[str]:
    """Open escalations whose next decision is due, earliest first (an index range scan)."""
    column = t.escalations.c.next_decision_at
    rows = tx.execute(select(t.escalations.c.id).where(column <= now)
                      .where(t.escalations.c.state.not_in(CLOSED)).order_by(column)).all()
    return [row.id for row in rows]


def schedule(tx: Connection, items: list[Scheduled]) -> None:
    """Store the instants in one batched statement; an escalation written since (another
    version) keeps the instant its writer gave."""
    if not items:
        return
    table = t.escalations
    statement = (update(table).where(table.c.id == bindparam("eid"))
                 .where(table.c.version == bindparam("ver"))
                 .values(next_decision_at=bindparam("due")))
    tx.execute(statement, [{"eid": i.escalation_id, "ver": i.version, "due": i.at} for i in items])


def follow_policy(tx: Connection, policy_fingerprint: str, now: datetime) -> bool:
    """Make every open escalation due when the rules changed since the instants were computed;
    True when they did."""
    recorded = tx.execute(select(decision_schedule.c.policy)
                          .where(decision_schedule.c.id == 1)).scalar()
    if recorded == policy_fingerprint:
        return False
    tx.execute(update(t.escalations).where(t.escalations.c.state.not_in(CLOSED))
               .values(next_decision_at=now))
    values = {"policy": policy_fingerprint, "updated_at": now}
    if recorded is None:
        tx.execute(decision_schedule.insert().values(id=1, **values))
    else:
        tx.execute(update(decision_schedule).where(decision_schedule.c.id == 1).values(**values))
    return True
