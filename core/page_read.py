"""The first stage of a page: everything its records need from the store, read in batch.

Rules:
- a page's state is read with a fixed number of statements whatever its size: the links of
  its records, the escalations they name (by link or by a mirror's marker), every link of those
  escalations, the pending updates of every record so linked, their pending creates, which of
  their mirror creates' keys were queued before, and which of them hold files;
- a link stored under an older identity of a record moves to the record's id first
  (core/relink.py), so the state read is the one the page's writes start from;
- what the page later asks beyond this state (an escalation no record named) is read then, one
  statement each: correct, only not batched (core/page_write.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from core import schema as t
from core.connector import RemoteRecord
from core.files_store import attachment_files
from core.planner import escalation_id_for, idempotency_key, parse_idempotency_key
from core.relink import relink
from core.store import LinkRow, OutboxRow, Store, StoredEscalation, _outbox

Key = tuple[str, str]
O = t.outbox
PENDING_UPDATES_OF = select(O).where(
    (O.c.connector == bindparam("b_connector"))
    & O.c.remote_id.in_(bindparam("b_ids", expanding=True))
    & (O.c.kind == "update") & (O.c.state == "pending")).order_by(O.c.id)
PENDING_CREATES_OF = select(O).where(
    O.c.escalation_id.in_(bindparam("b_ids", expanding=True))
    & (O.c.kind == "create") & (O.c.state == "pending")).order_by(O.c.id)
QUEUED_KEYS = select(O.c.dedupe_key).where(O.c.dedupe_key.in_(bindparam("b_keys", expanding=True)))
DONE_KEYS = select(t.done_keys.c.dedupe_key).where(
    t.done_keys.c.dedupe_key.in_(bindparam("b_keys", expanding=True)))
WITH_FILES = select(attachment_files.c.escalation_id).distinct().where(
    attachment_files.c.escalation_id.in_(bindparam("b_ids", expanding=True)))


@dataclass
class PageState:
    """What the store held for a page when it was read (``None``: known to be absent)."""
    links: dict[Key, LinkRow | None] = field(default_factory=dict)  # (tracker, remote id)
    of_escalation: dict[str, list[Key]] = field(default_factory=dict)  # its links' keys
    escalations: dict[str, StoredEscalation | None] = field(default_factory=dict)
    actions: dict[int, OutboxRow] = field(default_factory=dict)  # pending ones read, by id
    updates: dict[Key, list[int]] = field(default_factory=dict)  # (tracker, remote id): ids
    creates: dict[Key, list[int]] = field(default_factory=dict)  # (escalation, tracker): ids
    taken_keys: set[str] = field(default_factory=set)  # queued before or done and pruned
    checked_keys: set[str] = field(default_factory=set)
    with_files: set[str] = field(default_factory=set)


def read_page(store: Store, tx: Connection, name: str, records: Iterable[RemoteRecord],
              trackers: list[str], read: Callable[[str], RemoteRecord],
              opens: Callable[[RemoteRecord], bool]) -> PageState:
    """The state of the page of ``name``'s ``records`` (see the module rules); ``opens``: whether
    an unlinked record without a mirror's marker may open an escalation (its mapping's rule):
    only those, and linked or marked ones, have their escalation's state read."""
    latest = {r.id: r for r in records}
    links = store.links_for.raw(store, tx, name, list(latest))
    links.update(relink(store, tx, name, [r for r in latest.values() if r.id not in links], read))
    state = PageState()
    state.links.update({(name, remote_id): None for remote_id in latest})
    state.links.update({(name, remote_id): link for remote_id, link in links.items()})
    ids = {link.escalation_id for link in links.values()}
    wanted = [(name, remote_id) for remote_id in links]
    for record in latest.values():
        parsed = parse_idempotency_key(record.idempotency_key)
        if parsed and parsed[1] == name:
            ids.add(parsed[0])
        elif record.id not in links and opens(record):  # the escalation it would open
            ids.add(escalation_id_for(name, record.id))
        else:
            continue
        wanted.append((name, record.id))
    read_escalations(store, tx, state, sorted(ids), trackers)
    read_updates(tx, state, wanted)  # a record linked now has its pending updates read too
    return state


def read_escalations(store: Store, tx: Connection, state: PageState, ids: list[str],
                     trackers: list[str]) -> None:
    """Add escalations ``ids`` to ``state`` (rows, links, pending actions, keys, files); what
    ``state`` already holds is kept: it may be what the page wrote since."""
    ids = sorted(set(ids) - set(state.of_escalation))
    if not ids:
        return
    found = store.get_escalations.raw(store, tx, ids)
    for eid in ids:
        state.escalations.setdefault(eid, found.get(eid))
    for eid, rows in store.links_of.raw(store, tx, ids).items():
        state.of_escalation[eid] = [(link.tracker, link.remote_id) for link in rows]
        for link in rows:
            state.links.setdefault((link.tracker, link.remote_id), link)
    read_updates(tx, state, [key for eid in ids for key in state.of_escalation[eid]])
    keys = [(eid, tracker) for eid in ids for tracker in trackers]
    for key in keys:
        state.creates.setdefault(key, [])
    for row in tx.execute(PENDING_CREATES_OF, {"b_ids": ids}).all():
        state.creates.setdefault((row.escalation_id, row.connector), [])
        _add_row(state, state.creates[(row.escalation_id, row.connector)], row)
    read_keys(tx, state, [idempotency_key(eid, tracker) for eid, tracker in keys])
    state.with_files.update(tx.execute(WITH_FILES, {"b_ids": ids}).scalars())


def read_updates(tx: Connection, state: PageState, keys: list[Key]) -> None:
    """The pending updates of records ``keys`` (tracker, remote id) not read yet."""
    by_tracker: dict[str, list[str]] = {}
    for tracker, remote_id in keys:
        if (tracker, remote_id) not in state.updates:
            by_tracker.setdefault(tracker, []).append(remote_id)
    for tracker, remote_ids in sorted(by_tracker.items()):
        for remote_id in remote_ids:
            state.updates[(tracker, remote_id)] = []
        for row in tx.execute(PENDING_UPDATES_OF, {"b_connector": tracker,
                                                   "b_ids": sorted(set(remote_ids))}).all():
            _add_row(state, state.updates[(tracker, row.remote_id)], row)


def read_keys(tx: Connection, state: PageState, keys: list[str]) -> None:
    """Which of de-duplication ``keys`` were queued before (any state) or done and pruned."""
    fresh = sorted(set(keys) - state.checked_keys)
    if not fresh:
        return
    state.checked_keys.update(fresh)
    state.taken_keys.update(tx.execute(QUEUED_KEYS, {"b_keys": fresh}).scalars())
    state.taken_keys.update(tx.execute(DONE_KEYS, {"b_keys": fresh}).scalars())


def _add_row(state: PageState, ids: list[int], row: object) -> None:
    action = _outbox(row)
    state.actions.setdefault(action.id, action)
    if action.id not in ids:
        ids.append(action.id)
