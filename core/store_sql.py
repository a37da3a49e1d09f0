"""The store's hot statements, built once (issue 11 item 3).

Building a SQLAlchemy statement costs about ten times executing a prebuilt one (the coercion of
every operand and the construction of its cache key): the statements the engine and the outbox
run per record or per action are therefore built here once, with bound parameters, and executed
with a parameter dict (a list of them for ``executemany``). Parameters named ``b_*`` are the
WHERE clause's; the others are the columns an UPDATE sets.
"""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import bindparam, insert, select, update

from core import schema as t

E, L, O, C = t.escalations, t.links, t.outbox, t.cursors

ESCALATION = select(E).where(E.c.id == bindparam("b_id"))
ESCALATIONS = select(E).where(E.c.id.in_(bindparam("b_ids", expanding=True)))
ESCALATION_DATA = select(E.c.data).where(E.c.id == bindparam("b_id"))
INSERT_ESCALATION = insert(E)
UPDATE_ESCALATION = update(E).where((E.c.id == bindparam("b_id"))
                                    & (E.c.version == bindparam("b_version")))

LINKS_FOR = select(L).where((L.c.tracker == bindparam("b_tracker"))
                            & L.c.remote_id.in_(bindparam("b_ids", expanding=True)))
LINKS_OF = select(L).where(L.c.escalation_id.in_(bindparam("b_ids", expanding=True))) \
    .order_by(L.c.tracker)
INSERT_LINK = insert(L)
UPDATE_LINK = update(L).where((L.c.tracker == bindparam("b_tracker"))
                              & (L.c.remote_id == bindparam("b_remote_id")))

CURSOR = select(C.c.cursor).where((C.c.connector == bindparam("b_connector"))
                                  & (C.c.stream == bindparam("b_stream")))

INSERT_ACTION = insert(O)
DONE_KEY = select(t.done_keys.c.dedupe_key).where(t.done_keys.c.dedupe_key == bindparam("b_key"))
_PENDING_UPDATES = select(O).where((O.c.connector == bindparam("b_connector"))
                                   & (O.c.remote_id == bindparam("b_remote_id"))
                                   & (O.c.kind == "update") & (O.c.state == "pending"))
LAST_PENDING_UPDATE = _PENDING_UPDATES.order_by(O.c.id.desc())
PENDING_UPDATES = _PENDING_UPDATES.order_by(O.c.id)
PENDING_CREATE = select(O).where((O.c.escalation_id == bindparam("b_escalation"))
                                 & (O.c.connector == bindparam("b_connector"))
                                 & (O.c.kind == "create") & (O.c.state == "pending"))
DONE_COMMENTS = select(O).where((O.c.escalation_id == bindparam("b_escalation"))
                                & (O.c.connector == bindparam("b_connector"))
                                & (O.c.kind == "comment") & (O.c.state == "done"))
PENDING_AFTER = select(O).where((O.c.escalation_id == bindparam("b_escalation"))
                                & (O.c.connector == bindparam("b_connector"))
                                & (O.c.state == "pending") & (O.c.id > bindparam("b_after"))) \
    .order_by(O.c.id).limit(bindparam("b_limit"))
ACTION = select(O).where(O.c.id == bindparam("b_id"))
DUE_ACTIONS = select(O).where((O.c.state == "pending") & (O.c.next_attempt_at <= bindparam("b_now"))
                              & (O.c.id > bindparam("b_after"))) \
    .order_by(O.c.id).limit(bindparam("b_limit"))
UPDATE_ACTION = update(O).where(O.c.id == bindparam("b_id"))


@lru_cache(maxsize=4)
def upsert_action(dialect: str):
    """INSERT of an action that a queued one with the same de-duplication key refuses."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(O).on_conflict_do_nothing(index_elements=["dedupe_key"]) \
        .returning(O.c.id)
