"""The last stage of a page: its state changes held in memory, written in one batch.

Rules:
- ``begin(tx, store, state)`` puts a page buffer on the page's transaction; from then on the
  store's record-level methods (``@paged``, core/tx_buffer.py) read the page's state (read in
  batch by core/page_read.py) together with what the page wrote so far, and their writes
  (escalations, links, outbox actions queued, replaced or finished) stay in the buffer;
- ``flush(tx)`` writes them with one batched statement per table and kind of change, in the
  order the foreign keys need (escalations, links, actions), inside the page's transaction and
  before the audit, history and comment buffers, so everything commits together;
- every change is journalled: ``back_to(mark)`` takes back what a record wrote after ``mark``
  (``tx_buffer.scope``, the engine's per-record isolation without a SAVEPOINT);
- what is read is a copy: a caller changing a row it read changes nothing until it saves it;
- an escalation update is checked against the version it was read at: against the page's state
  at once, against the table by the batched UPDATE's row count (``StoreConflict``).
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core import due, history, schema as t, store_sql as q, tx_buffer
from core.model import Escalation
from core.model_json import as_json
from core.outbox_queue import _insert_new
from core.tx_buffer import PAGE
from core.page_read import PageState, read_escalations
from core.page_state import PageRows
from core.redact import redact_text
from core.store_exec import write
from core.store import LinkRow, OutboxRow, Store, StoreConflict, StoredEscalation


class DuplicateEscalation(ValueError):
    """A record would open an escalation whose id the store already holds."""


def begin(tx: Connection, store: Store, state: PageState, trackers: list[str]) -> "PageWrites":
    """Put the page buffer on ``tx`` (before any other buffer: it is written first)."""
    return tx_buffer.buffer(tx, PAGE, lambda: PageWrites(store, state, trackers))


def flush(tx: Connection) -> None:
    """Write the page's buffered state changes now (see the module rules)."""
    tx_buffer.flush(tx, PAGE)


class PageWrites(PageRows):
    """The page's state and writes; methods named as the store's ``@paged`` ones."""

    def __init__(self, store: Store, state: PageState, trackers: list[str]):
        super().__init__(store, state)
        self.trackers = trackers

    # -- escalations ----------------------------------------------------------------------------
    def get_escalation(self, tx: Connection, escalation_id: str) -> StoredEscalation | None:
        return self.get_escalations(tx, [escalation_id]).get(escalation_id)

    def get_escalations(self, tx: Connection, ids: list[str]) -> dict[str, StoredEscalation]:
        missing = [eid for eid in set(ids) if eid not in self.state.escalations]
        if missing:
            read_escalations(self.store, tx, self.state, sorted(missing), self.trackers)
        found = {eid: self.state.escalations[eid] for eid in set(ids)}
        return {eid: StoredEscalation(s.escalation, dict(s.field_times))
                for eid, s in found.items() if s is not None}

    def save_escalation(self, tx: Connection, esc: Escalation, field_times: dict[str, Any], *,
                        by: str, run_id: str | None, previous_version: int | None,
                        next_decision_at: datetime | None = due.WRITE_TIME,
                        before: Escalation | None = None) -> None:
        """As ``Store.save_escalation``, held for the page's batched write."""
        current = self.get_escalation(tx, esc.id)
        data = as_json(esc)
        values = dict(version=esc.version, state=esc.state.value, data=data,
                      field_times=field_times, updated_at=esc.updated_at,
                      next_decision_at=due.written(esc, next_decision_at))
        prior = self.escalation_writes.get(esc.id)
        old = None
        if previous_version is None:
            if current is not None:
                raise DuplicateEscalation(f"escalation {esc.id} is already in the store")
            write = dict(insert=True, values=dict(values, id=esc.id, created_at=esc.created_at))
        else:
            if current is None or current.escalation.version != previous_version:
                raise StoreConflict(f"escalation {esc.id} changed since version {previous_version}")
            old = as_json(before or current.escalation)
            write = dict(prior or dict(insert=False, from_version=previous_version))
            write["values"] = dict(write.get("values", {}), **values)
        self.put(self.escalation_writes, esc.id, write)
        self.put(self.state.escalations, esc.id, StoredEscalation(esc, dict(field_times)))
        history.record_version(tx, escalation_id=esc.id, version=esc.version, by=by,
                               at=esc.updated_at, run_id=run_id, new=data, old=old)

    # -- links ----------------------------------------------------------------------------------
    def links_for(self, tx: Connection, tracker: str, remote_ids: list[str]) -> dict[str, LinkRow]:
        self.load_links(tx, tracker, remote_ids)
        found = {rid: self.state.links[(tracker, rid)] for rid in remote_ids}
        return {rid: _copy(link) for rid, link in found.items() if link is not None}

    def links_of(self, tx: Connection, escalation_ids: list[str]) -> dict[str, list[LinkRow]]:
        self.load_escalation_links(tx, escalation_ids)
        out = {}
        for eid in escalation_ids:
            links = [self.state.links[key] for key in self.state.of_escalation[eid]]
            out[eid] = sorted((_copy(link) for link in links if link is not None),
                              key=lambda link: link.tracker)
        return out

    def save_link(self, tx: Connection, link: LinkRow, now: datetime) -> None:
        key = (link.tracker, link.remote_id)
        self.load_links(tx, link.tracker, [link.remote_id])
        before = self.state.links[key]
        if before is not None and before.escalation_id != link.escalation_id:
            self.load_escalation_links(tx, [before.escalation_id])
            self.put(self.state.of_escalation, before.escalation_id,
                     [k for k in self.state.of_escalation[before.escalation_id] if k != key])
        self.load_escalation_links(tx, [link.escalation_id])
        if key not in self.state.of_escalation[link.escalation_id]:
            self.put(self.state.of_escalation, link.escalation_id,
                     self.state.of_escalation[link.escalation_id] + [key])
        self.put(self.state.links, key, _copy(link))
        self.put(self.link_writes, key, (_copy(link), now))

    # -- outbox ---------------------------------------------------------------------------------
    def enqueue(self, tx: Connection, *, escalation_id: str, connector: str, kind: str,
                payload: dict[str, Any], now: datetime, remote_id: str | None = None,
                dedupe_key: str | None = None, rule: str | None = None) -> int | None:
        """As ``Store.enqueue``; the id is the page's own (negative) until the page is written."""
        if dedupe_key is not None and self.key_taken(tx, dedupe_key):
            return None
        row = OutboxRow(id=self.new_id(), escalation_id=escalation_id, connector=connector,
                        kind=kind, remote_id=remote_id, payload=payload, dedupe_key=dedupe_key,
                        rule=rule, state="pending", attempts=0, next_attempt_at=now,
                        last_error=None, result=None)
        self.add_action(tx, row, now)
        return row.id

    def pending_update(self, tx: Connection, connector: str, remote_id: str) -> OutboxRow | None:
        rows = self.pending_updates(tx, connector, remote_id)
        return rows[-1] if rows else None

    def pending_updates(self, tx: Connection, connector: str, remote_id: str) -> list[OutboxRow]:
        return [dataclasses.replace(row) for row in self.updates_of(tx, connector, remote_id)]

    def pending_create(self, tx: Connection, escalation_id: str, connector: str) -> OutboxRow | None:
        row = self.create_of(tx, escalation_id, connector)
        return dataclasses.replace(row) if row is not None else None

    def replace_payload(self, tx: Connection, action_id: int, payload: dict[str, Any],
                        now: datetime) -> None:
        self.change_action(action_id, {"payload": payload, "updated_at": now})

    def finish_action(self, tx: Connection, action_id: int, state: str, now: datetime, *,
                      error: str | None = None, result: Any = None, attempts: int | None = None,
                      next_attempt_at: datetime | None = None) -> None:
        values: dict[str, Any] = dict(state=state, updated_at=now, last_error=redact_text(error))
        optional = dict(result=result, attempts=attempts, next_attempt_at=next_attempt_at)
        values.update({k: v for k, v in optional.items() if v is not None})
        self.change_action(action_id, values)

    # -- the batched write ----------------------------------------------------------------------
    def flush(self, tx: Connection) -> None:
        self._write_escalations(tx)
        updates = [dict(_link_values(link, now), b_tracker=link.tracker, b_remote_id=link.remote_id)
                   for (link, now) in self.link_writes.values() if self.stored_link(link)]
        inserts = [dict(_link_values(link, now), tracker=link.tracker, remote_id=link.remote_id)
                   for (link, now) in self.link_writes.values() if not self.stored_link(link)]
        _many(tx, q.UPDATE_LINK, updates)
        _many(tx, q.INSERT_LINK, inserts)
        new = [self.new_actions[i] for i in sorted(self.new_actions, reverse=True)]
        _many(tx, _insert_new(tx.dialect.name), new)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for action_id, values in self.action_writes.items():
            groups.setdefault(tuple(sorted(values)), []).append(dict(values, b_id=action_id))
        for rows in groups.values():
            _many(tx, q.UPDATE_ACTION, rows)

    def _write_escalations(self, tx: Connection) -> None:
        writes = list(self.escalation_writes.items())
        _many(tx, q.INSERT_ESCALATION, [w["values"] for _, w in writes if w["insert"]])
        changed = [dict(w["values"], b_id=eid, b_version=w["from_version"])
                   for eid, w in writes if not w["insert"]]
        if changed and write(tx, q.UPDATE_ESCALATION, changed).rowcount != len(changed):
            stored = dict(tx.execute(select(t.escalations.c.id, t.escalations.c.version).where(
                t.escalations.c.id.in_([row["b_id"] for row in changed]))).all())
            moved = [row["b_id"] for row in changed if stored.get(row["b_id"]) != row["b_version"]]
            raise StoreConflict(f"escalation(s) {', '.join(moved)} changed while the page was read")


def _many(tx: Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        write(tx, statement, rows)


def _link_values(link: LinkRow, now: datetime) -> dict[str, Any]:
    return dict(escalation_id=link.escalation_id, key=link.key, url=link.url, role=link.role,
                last_version=link.last_version, last_hash=link.last_hash,
                last_data=link.last_data, seen_comments=link.seen_comments, updated_at=now)


def _copy(link: LinkRow) -> LinkRow:
    return dataclasses.replace(link, seen_comments=list(link.seen_comments))
