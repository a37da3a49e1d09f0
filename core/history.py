"""Escalation history: what changed in each version, not a copy of every version.

Rules:
- The escalations table holds the newest version in full. The row of version N in
  ``escalation_changes`` holds a reverse patch (RFC 6902, applied with jsonpatch) that turns
  version N's data into version N-1's; the version that opened the escalation holds none.
  The patch is built by ``reverse_patch``: objects compared key by key, a list that only grew
  at its end (comments, links) taken back by removing what was added, any other changed value
  replaced by its old one (cheaper to build than jsonpatch's diff, which compares lists item
  by item and each scalar through its JSON text).
- Any version still in the history is rebuilt by applying the patches from the newest version
  backwards, so pruning the oldest rows never breaks the newer ones.
- A version that changed only a state field costs a few hundred bytes, whatever the size of the
  description; a 5 MB description is stored once, not once per version.
- A transaction's new versions are inserted together at its commit (core/tx_buffer.py).
- ``escalation_history`` keeps, per version, only a summary for reports that query the store
  (the SLA report reads each version's state and escalation level there): the escalation's
  scalar fields that are set, strings of at most SUMMARY_TEXT characters; no description,
  comments or links.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import jsonpatch
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from core import schema as t, tx_buffer
from core.store_exec import write

SUMMARY_TEXT = 200


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """The scalar fields of an escalation's data, as reports query them per version."""
    return {k: v for k, v in data.items() if isinstance(v, (bool, int, float))
            or (isinstance(v, str) and len(v) <= SUMMARY_TEXT)}  # a missing key reads as null


def record_version(tx: Connection, *, escalation_id: str, version: int, by: str, at: datetime,
                   run_id: str | None, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Append the change that produced ``new`` (from ``old``; None: the escalation opened)."""
    patch = None if old is None else reverse_patch(new, old)
    row = dict(escalation_id=escalation_id, version=version, by=by, at=at, run_id=run_id)
    rows = tx_buffer.buffer(tx, "history", _Rows)  # inserted in two statements at the commit
    rows.add((dict(row, patch=patch), dict(row, data=summary(new))))


def reverse_patch(new: dict[str, Any], old: dict[str, Any], path: str = "") -> list[dict[str, Any]]:
    """RFC 6902 operations turning ``new`` into ``old`` (see the module rules)."""
    ops: list[dict[str, Any]] = []
    for key, value in new.items():
        where = f"{path}/{_escape(key)}"
        if key not in old:
            ops.append({"op": "remove", "path": where})
        elif type(value) is not type(old[key]) or value != old[key]:
            ops.extend(_changed(where, value, old[key]))
    ops.extend({"op": "add", "path": f"{path}/{_escape(key)}", "value": value}
               for key, value in old.items() if key not in new)
    return ops


def _changed(where: str, new: Any, old: Any) -> list[dict[str, Any]]:
    if isinstance(new, dict) and isinstance(old, dict):
        return reverse_patch(new, old, where)
    if isinstance(new, list) and isinstance(old, list) and len(new) > len(old) \
            and new[:len(old)] == old:
        return [{"op": "remove", "path": f"{where}/{i}"} for i in range(len(new) - 1, len(old) - 1, -1)]
    return [{"op": "replace", "path": where, "value": old}]


def _escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


_INSERT_CHANGES, _INSERT_SUMMARIES = insert(t.changes), insert(t.history)  # built once


class _Rows:
    """The transaction's new versions: (change row, summary row) each (core/tx_buffer.py)."""

    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def add(self, pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
        self.rows.append(pair)

    def mark(self) -> int:
        return len(self.rows)

    def back_to(self, mark: int) -> None:
        del self.rows[mark:]

    def flush(self, tx: Connection) -> None:
        if self.rows:
            write(tx, _INSERT_CHANGES, [change for change, _ in self.rows])
            write(tx, _INSERT_SUMMARIES, [summary_row for _, summary_row in self.rows])


def history_of(tx: Connection, escalation_id: str) -> list[dict[str, Any]]:
    """Every version still in the history, oldest first, each with its full ``data``."""
    tx_buffer.flush(tx, "history")
    current = tx.execute(select(t.escalations.c.data)
                         .where(t.escalations.c.id == escalation_id)).scalar()
    rows = tx.execute(select(t.changes).where(t.changes.c.escalation_id == escalation_id)
                      .order_by(t.changes.c.version.desc())).all()
    versions, data = [], current
    for row in rows:
        entry = dict(row._mapping)
        versions.append({**{k: v for k, v in entry.items() if k != "patch"}, "data": data})
        if entry["patch"] is None:
            break
        data = jsonpatch.apply_patch(data, entry["patch"])
    return versions[::-1]


def prune_history(tx: Connection, before: datetime) -> int:
    """Delete changes (and their summaries) older than ``before``, keeping each escalation's
    newest one."""
    removed = 0
    for table in (t.changes, t.history):
        newest = select(table.c.escalation_id, func.max(table.c.version).label("v")) \
            .group_by(table.c.escalation_id).subquery()
        keep = select(newest.c.v).where(newest.c.escalation_id == table.c.escalation_id) \
            .scalar_subquery()
        result = tx.execute(delete(table).where((table.c.at < before) & (table.c.version != keep)))
        removed = result.rowcount if table is t.changes else removed
    return removed


def convert_full_copies(conn: Connection) -> None:
    """Migration: turn the full copies of ``escalation_history`` into reverse patches, and the
    copies themselves into summaries."""
    ids = conn.execute(select(t.history.c.escalation_id).distinct()).scalars().all()
    for escalation_id in ids:
        rows = conn.execute(select(t.history).where(t.history.c.escalation_id == escalation_id)
                            .order_by(t.history.c.version)).all()
        previous = None
        for row in rows:
            patch = None if previous is None else jsonpatch.make_patch(row.data, previous).patch
            conn.execute(insert(t.changes).values(escalation_id=escalation_id, version=row.version,
                                                  by=row.by, at=row.at, run_id=row.run_id,
                                                  patch=patch))
            conn.execute(update(t.history).where((t.history.c.escalation_id == escalation_id)
                                                 & (t.history.c.version == row.version))
                         .values(data=summary(row.data)))
            previous = row.data
