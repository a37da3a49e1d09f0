"""The page buffer's bookkeeping: its state, the writes it holds, and the journal to undo them.

Rules:
- every change to the page's state or writes goes through ``put`` and is journalled, so
  ``back_to(mark)`` restores exactly what was there at ``mark`` (a record that failed leaves
  nothing behind); rows read from the store to fill a gap are facts, not changes, and stay;
- the page's new outbox actions carry negative ids, in the order they were queued; changing one
  changes the row to be inserted, changing a stored one becomes a batched UPDATE;
- an action leaves the page's pending updates and creates once its state is no longer pending.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from core import store_sql as q
from core.page_read import Key, PageState, read_escalations, read_keys, read_updates
from core.store import LinkRow, OutboxRow, Store, _outbox

_MISSING = object()


class PageRows:
    def __init__(self, store: Store, state: PageState):
        self.store = store
        self.state = state
        self.trackers: list[str] = []
        self.journal: list[tuple[dict, Any, Any]] = []
        self.escalation_writes: dict[str, dict[str, Any]] = {}
        self.link_writes: dict[Key, tuple[LinkRow, datetime]] = {}
        self.new_actions: dict[int, dict[str, Any]] = {}  # id (negative) -> row to insert
        self.action_writes: dict[int, dict[str, Any]] = {}  # stored id -> values to update
        self.new_keys: dict[str, bool] = {}
        self.in_db = {key for key, link in state.links.items() if link is not None}
        self._last_id = 0

    # -- the journal (core/tx_buffer.py's buffer protocol) ---------------------------------------
    def put(self, table: dict, key: Any, value: Any) -> None:
        self.journal.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def mark(self) -> int:
        return len(self.journal)

    def back_to(self, mark: int) -> None:
        while len(self.journal) > mark:
            table, key, old = self.journal.pop()
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old

    def new_id(self) -> int:
        self._last_id -= 1
        return self._last_id

    # -- gaps in the state read in batch ---------------------------------------------------------
    def load_links(self, tx: Connection, tracker: str, remote_ids: list[str]) -> None:
        missing = [rid for rid in remote_ids if (tracker, rid) not in self.state.links]
        if not missing:
            return
        found = self.store.links_for.raw(self.store, tx, tracker, missing)
        for rid in missing:
            self.state.links[(tracker, rid)] = found.get(rid)
            if rid in found:
                self.in_db.add((tracker, rid))

    def load_escalation_links(self, tx: Connection, escalation_ids: list[str]) -> None:
        missing = [eid for eid in escalation_ids if eid not in self.state.of_escalation]
        if missing:
            before = set(self.state.links)
            read_escalations(self.store, tx, self.state, missing, self.trackers)
            self.in_db.update(k for k in set(self.state.links) - before if self.state.links[k])

    def stored_link(self, link: LinkRow) -> bool:
        return (link.tracker, link.remote_id) in self.in_db

    def key_taken(self, tx: Connection, key: str) -> bool:
        read_keys(tx, self.state, [key])
        return key in self.state.taken_keys or key in self.new_keys

    # -- pending actions -------------------------------------------------------------------------
    def updates_of(self, tx: Connection, connector: str, remote_id: str) -> list[OutboxRow]:
        read_updates(tx, self.state, [(connector, remote_id)])
        return self._pending(self.state.updates[(connector, remote_id)])

    def create_of(self, tx: Connection, escalation_id: str, connector: str) -> OutboxRow | None:
        key = (escalation_id, connector)
        if key not in self.state.creates:
            row = tx.execute(q.PENDING_CREATE, {"b_escalation": escalation_id,
                                                "b_connector": connector}).first()
            self.state.creates[key] = []
            if row is not None:
                self.state.actions[row.id] = _outbox(row)
                self.state.creates[key].append(row.id)
        rows = self._pending(self.state.creates[key])
        return rows[0] if rows else None

    def _pending(self, ids: list[int]) -> list[OutboxRow]:
        rows = (self.state.actions[i] for i in ids)
        return [row for row in rows if row.state == "pending"]

    def add_action(self, tx: Connection, row: OutboxRow, now: datetime) -> None:
        values = {f.name: getattr(row, f.name) for f in dataclasses.fields(row) if f.name != "id"}
        self.put(self.new_actions, row.id, dict(values, created_at=now, updated_at=now))
        self.put(self.state.actions, row.id, row)
        if row.dedupe_key is not None:
            self.put(self.new_keys, row.dedupe_key, True)
        if row.kind == "update" and row.remote_id is not None:
            read_updates(tx, self.state, [(row.connector, row.remote_id)])
            self._append(self.state.updates, (row.connector, row.remote_id), row.id)
        elif row.kind == "create":
            self.create_of(tx, row.escalation_id, row.connector)
            self._append(self.state.creates, (row.escalation_id, row.connector), row.id)

    def _append(self, table: dict[Key, list[int]], key: Key, action_id: int) -> None:
        self.put(table, key, table[key] + [action_id])

    def change_action(self, action_id: int, values: dict[str, Any]) -> None:
        """Change a pending action: the page's own row, or a stored one (batched UPDATE)."""
        if action_id < 0:
            self.put(self.new_actions, action_id, dict(self.new_actions[action_id], **values))
        else:
            self.put(self.action_writes, action_id,
                     dict(self.action_writes.get(action_id, {}), **values))
        row = self.state.actions.get(action_id)
        if row is not None:
            fields = {k: v for k, v in values.items() if k in OutboxRow.__dataclass_fields__}
            self.put(self.state.actions, action_id, dataclasses.replace(row, **fields))
