"""Outbox work shared by several daemons on one store: claims that keep order per record.

Rules:
- an action is claimed by one worker at a time (``outbox.claimed_by``); a claim counts while its
  worker's lease (``worker:<id>`` in ``leases``) lives, so a killed daemon's actions are taken
  over once its lease expires;
- claiming is ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, under a transaction-level
  advisory lock, so two daemons never claim one action, nor two actions of one record;
- order per record (escalation and target tracker): an action is claimable only when every
  earlier pending action of that record is claimable in the same batch (due, and not in flight
  elsewhere): later actions wait for earlier ones;
- a finished action keeps ``claimed_by``: who sent it;
- the claimant sends its batch in id order; an action left pending (retry, waiting on a create)
  holds the record's later actions back until the next pass;
- inside one process the threads that claim (a lane, the hint pass) share the worker's id, so
  a claim is counted per holder: an action is released only when the last thread holding it
  lets it go (a lane's release never frees what a hint pass is about to send, nor the reverse);
- the claims of a worker whose lease expired are freed by the first live worker's heartbeat
  that sees them (``release_dead``, core/worker.py), whatever its daemon is busy with.
"""
from __future__ import annotations

import functools
import threading
from collections import Counter
from datetime import datetime

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection

from core import schema as t
from core.store import OutboxRow, _outbox

STORE_LOCK_KEY = 0x7473_7772_6974_6572  # "tswriter"
CLAIM_LOCK_KEY = 0x7473_636C_6169_6D73  # "tsclaims"
_HELD: Counter = Counter()  # (worker, action id) -> threads of this process holding the claim
_HELD_LOCK = threading.Lock()

_CANDIDATES = """
SELECT o.id FROM outbox o
WHERE o.state = 'pending' AND o.next_attempt_at <= :now AND o.id > :after {connector} {skip}
  {escalations}
  AND (o.claimed_by IS NULL OR o.claimed_by = :me OR NOT EXISTS (
        SELECT 1 FROM leases l WHERE l.name = 'worker:' || o.claimed_by AND l.expires_at > :now))
  AND NOT EXISTS (
        SELECT 1 FROM outbox e
        WHERE e.escalation_id = o.escalation_id AND e.connector = o.connector
          AND e.state = 'pending' AND e.id < o.id
          AND (e.id <= :after OR e.next_attempt_at > :now
               OR (e.claimed_by IS NOT NULL AND e.claimed_by <> :me AND EXISTS (
                     SELECT 1 FROM leases l2
                     WHERE l2.name = 'worker:' || e.claimed_by AND l2.expires_at > :now))))
ORDER BY o.id LIMIT :limit {lock}
"""


def lock_store(tx: Connection) -> None:
    """The store's writers' lock, held to the end of the transaction (PostgreSQL only)."""
    if tx.dialect.name == "postgresql":
        tx.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _signed(STORE_LOCK_KEY)})


def claim(tx: Connection, worker: str, now: datetime, limit: int, after_id: int = 0,
          connector: str | None = None, skip: set[str] | None = None,
          escalations: list[str] | None = None) -> list[OutboxRow]:
    """Claim up to ``limit`` due actions for ``worker`` (of ``connector`` only, of
    ``escalations`` only, when given)."""
    postgres = tx.dialect.name == "postgresql"
    if postgres:
        tx.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _signed(CLAIM_LOCK_KEY)})
    sql = _CANDIDATES.format(connector="AND o.connector = :connector" if connector else "",
                             skip="AND o.connector NOT IN :skip" if skip else "",
                             escalations="AND o.escalation_id IN :escs" if escalations else "",
                             lock="FOR UPDATE OF o SKIP LOCKED" if postgres else "")
    params = {"now": now, "after": after_id, "me": worker, "limit": limit}
    stmt = _timed(sql)
    if connector:
        params["connector"] = connector
    if skip:
        stmt, params["skip"] = stmt.bindparams(bindparam("skip", expanding=True)), sorted(skip)
    if escalations:
        stmt, params["escs"] = stmt.bindparams(bindparam("escs", expanding=True)), escalations
    ids = [row[0] for row in tx.execute(stmt, params)]
    rows = tx.execute(_ACTIONS, {"b_ids": ids}).all() if ids else []
    picked = [_outbox(row) for row in rows]
    if picked:
        tx.execute(text("UPDATE outbox SET claimed_by = :me WHERE id IN :ids")
                   .bindparams(bindparam("ids", expanding=True)),
                   {"me": worker, "ids": [a.id for a in picked]})
        with _HELD_LOCK:
            _HELD.update((worker, a.id) for a in picked)
    return picked


def _let_go(worker: str, ids: list[int]) -> list[int]:
    """Count one holder less for each id; the ids nobody in this process holds any more."""
    free = []
    with _HELD_LOCK:
        for action_id in ids:
            slot = (worker, action_id)
            _HELD[slot] -= 1
            if _HELD[slot] <= 0:
                del _HELD[slot]
                free.append(action_id)
    return free


def release(tx: Connection, worker: str, ids: list[int] | None = None) -> None:
    """Drop ``worker``'s claims on ``ids`` (all of them when None): what is still pending is
    free again for any worker, once no other thread of this process holds it."""
    if ids is None:
        tx.execute(text("UPDATE outbox SET claimed_by = NULL WHERE claimed_by = :me "
                        "AND state = 'pending'"), {"me": worker})
        return
    ids = _let_go(worker, ids)
    for start in range(0, len(ids), 500):
        tx.execute(text("UPDATE outbox SET claimed_by = NULL WHERE claimed_by = :me "
                        "AND state = 'pending' AND id IN :ids")
                   .bindparams(bindparam("ids", expanding=True)),
                   {"me": worker, "ids": ids[start:start + 500]})


# a pending action claimed by a worker whose lease has expired (a daemon that was killed)
_DEAD_CLAIMS = ("state = 'pending' AND claimed_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                "leases l WHERE l.name = 'worker:' || outbox.claimed_by AND l.expires_at > :now)")


def stale_claims(tx: Connection, now: datetime) -> int:
    """Pending actions claimed by a worker whose lease has expired (work to take over)."""
    stmt = _timed(f"SELECT count(*) FROM outbox WHERE {_DEAD_CLAIMS}")
    return tx.execute(stmt, {"now": now}).scalar() or 0


def release_dead(tx: Connection, now: datetime) -> int:
    """Free the pending actions claimed by workers whose lease has expired (a daemon that was
    killed): any worker may take them already (``_CANDIDATES``); freed, ``claimed_by`` no longer
    names a dead daemon and ``stale_claims`` stops waking the live ones. Returns how many."""
    stmt = _timed(f"UPDATE outbox SET claimed_by = NULL WHERE {_DEAD_CLAIMS}")
    return tx.execute(stmt, {"now": now}).rowcount or 0


def claimed_by(tx: Connection, worker: str) -> list[int]:
    rows = tx.execute(text("SELECT id FROM outbox WHERE claimed_by = :me AND state = 'pending'"),
                      {"me": worker})
    return [row[0] for row in rows]


_ACTIONS = select(t.outbox).where(t.outbox.c.id.in_(bindparam("b_ids", expanding=True))) \
    .order_by(t.outbox.c.id)


@functools.lru_cache(maxsize=64)  # a handful of texts, each built once
def _timed(sql: str):
    """The statement with ``:now`` bound through the store's UTC type (naive text on SQLite)."""
    return text(sql).bindparams(bindparam("now", type_=t.UTC))


def _signed(key: int) -> int:
    """A 64-bit key as PostgreSQL's signed bigint."""
    return key - (1 << 64) if key >= 1 << 63 else key
