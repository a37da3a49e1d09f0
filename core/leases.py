"""Leases in the store: what one daemon holds at a time, and until when.

Rules:
- a lease is held while ``expires_at`` lies ahead; its holder renews it (heartbeat), anyone may
  take it once it has expired, so a killed daemon's leases pass on after ``lease_seconds``;
- taking or renewing is one conditional write (insert, or update where expired or already
  ours): two daemons racing for one lease never both get it (the row's primary key and the
  update's condition decide, inside the store's own locking);
- a tracker's ``Retry-After`` is written here for every daemon to honour (``rate_limits``).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from core.worker_schema import leases, rate_limits

PULL = "pull:"
WORKER = "worker:"


def acquire(tx: Connection, name: str, holder: str, seconds: float, now: datetime) -> bool:
    """Take or renew ``name`` for ``holder`` until now + seconds; False when another holds it."""
    until = now + timedelta(seconds=seconds)
    result = tx.execute(update(leases).where(
        (leases.c.name == name) & ((leases.c.holder == holder) | (leases.c.expires_at <= now))
    ).values(holder=holder, expires_at=until))
    if result.rowcount:
        return True
    if tx.execute(select(leases.c.name).where(leases.c.name == name)).first():
        return False
    try:
        with tx.begin_nested():
            tx.execute(insert(leases).values(name=name, holder=holder, acquired_at=now,
                                             expires_at=until))
    except IntegrityError:  # another daemon inserted it first
        return False
    return True


def renew(tx: Connection, holder: str, seconds: float, now: datetime) -> list[str]:
    """Push every lease ``holder`` still holds to now + seconds; returns their names."""
    tx.execute(update(leases).where((leases.c.holder == holder) & (leases.c.expires_at > now))
               .values(expires_at=now + timedelta(seconds=seconds)))
    return held(tx, holder, now)


def held(tx: Connection, holder: str, now: datetime) -> list[str]:
    rows = tx.execute(select(leases.c.name).where(
        (leases.c.holder == holder) & (leases.c.expires_at > now)).order_by(leases.c.name))
    return [row.name for row in rows]


def release(tx: Connection, holder: str, names: list[str] | None = None) -> None:
    """Give up ``names`` (all of ``holder``'s leases when None), e.g. on a clean stop."""
    query = delete(leases).where(leases.c.holder == holder)
    if names is not None:
        query = query.where(leases.c.name.in_(names))
    tx.execute(query)


def live_workers(tx: Connection, now: datetime) -> list[str]:
    rows = tx.execute(select(leases.c.holder).where(
        leases.c.name.like(WORKER + "%") & (leases.c.expires_at > now)).order_by(leases.c.holder))
    return [row.holder for row in rows]


def holders(tx: Connection, now: datetime) -> dict[str, str]:
    """name -> holder of every lease that has not expired."""
    rows = tx.execute(select(leases.c.name, leases.c.holder).where(leases.c.expires_at > now))
    return {row.name: row.holder for row in rows}


# -- the shared rate budget --------------------------------------------------------------------
def note_rate_limited(tx: Connection, tracker: str, until: datetime, reason: str,
                      now: datetime, remaining: int | None = None) -> None:
    """Every daemon leaves ``tracker`` alone until ``until`` (a later block is never shortened)."""
    current = blocked_until(tx, tracker)
    if current is not None and current >= until:
        return
    values = dict(blocked_until=until, reason=reason[:255], remaining=remaining, updated_at=now)
    if current is None and not tx.execute(update(rate_limits).where(
            rate_limits.c.tracker == tracker).values(**values)).rowcount:
        try:
            with tx.begin_nested():
                tx.execute(insert(rate_limits).values(tracker=tracker, **values))
        except IntegrityError:
            tx.execute(update(rate_limits).where(rate_limits.c.tracker == tracker).values(**values))
    else:
        tx.execute(update(rate_limits).where(rate_limits.c.tracker == tracker).values(**values))


_BLOCKED_UNTIL = select(rate_limits.c.blocked_until).where(
    rate_limits.c.tracker == bindparam("b_tracker"))  # built once: every lane asks, every pass
_BLOCKED_AMONG = select(rate_limits.c.tracker).where(
    rate_limits.c.tracker.in_(bindparam("b_trackers", expanding=True))
    & (rate_limits.c.blocked_until > bindparam("b_now")))


def blocked_until(tx: Connection, tracker: str) -> datetime | None:
    return tx.execute(_BLOCKED_UNTIL, {"b_tracker": tracker}).scalar()


def is_blocked(tx: Connection, tracker: str, now: datetime) -> bool:
    until = blocked_until(tx, tracker)
    return until is not None and until > now


def blocked_among(tx: Connection, trackers: list[str], now: datetime) -> set[str]:
    """Which of ``trackers`` are blocked at ``now`` (as ``is_blocked``, in one statement)."""
    if not trackers:
        return set()
    return set(tx.execute(_BLOCKED_AMONG, {"b_trackers": sorted(set(trackers)), "b_now": now})
               .scalars())
