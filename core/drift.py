"""Drift: a linked record that holds values other than the escalation's, with no write pending.

Rules:
- the record is compared with what its mapping wants there (``mapping.to_tracker``), field by
  field, as the tracker stores values (``same_native``);
- a field is not drift while an update for the record is pending (that update will write it);
- a field whose wanted value is exactly what tiersync's last completed update of the record
  sent is the tracker's own rendering of that write (normalisation), not drift: writing it again
  would loop;
- a field the mapping also reads (inbound) whose value means the same to the model as the
  wanted one is not drift either: Zendesk closing a solved ticket (both map to ``closed``) is
  the tracker's own business, and writing ``solved`` back would be refused;
- everything else is drift, and is repaired by queueing an update with today's values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core import schema as t
from core.mapping import Mapping
from core.model import Escalation
from core.reconcile import outbound_diff, same_native
from core.redact_records import redact_escalation
from core.store import LinkRow, Store


@dataclass(frozen=True)
class Difference:
    """One field of one record that differs from the escalation."""

    tracker: str
    remote_id: str
    escalation_id: str
    path: str
    record_value: Any
    wanted: Any
    kind: str  # "drift" (tiersync's view of the record is stale) or "changed" (changed remotely, not yet synced)


def view_for(mapping: Mapping, escalation: Escalation) -> Escalation:
    """The escalation as tiersync may write it into the mapping's tracker (redacted unless the
    mapping turns that off; the planner's rule, core/redact_records.py)."""
    return redact_escalation(escalation) if getattr(mapping, "redact_secrets", True) else escalation


def last_sent(tx: Connection, tracker: str, remote_id: str) -> dict[str, Any]:
    """Per field path, the value tiersync's most recent completed update of the record sent."""
    rows = tx.execute(select(t.outbox.c.result, t.outbox.c.payload).where(
        (t.outbox.c.connector == tracker) & (t.outbox.c.remote_id == remote_id)
        & (t.outbox.c.kind == "update") & (t.outbox.c.state == "done"))
        .order_by(t.outbox.c.id.desc()).limit(20)).all()
    sent: dict[str, Any] = {}
    for row in rows:
        fields = (row.result or {}).get("fields") if isinstance(row.result, dict) else None
        for path, value in (fields if fields is not None else (row.payload or {}).get("fields", {})).items():
            sent.setdefault(path, value)
    return sent


def drifted_fields(store: Store, tx: Connection, mapping: Mapping, escalation: Escalation,
                   link: LinkRow, record_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Native fields (path -> wanted value) of the linked record that drifted (module rules).

    ``record_data``: the record as just read from its tracker; default: the stored snapshot.
    """
    if store.pending_update(tx, link.tracker, link.remote_id) is not None:
        return {}  # that update will write it (asked first: it is cheaper than the diff)
    data = link.last_data if record_data is None else record_data
    diff = outbound_diff(mapping, view_for(mapping, escalation), data)
    if not diff:
        return {}
    sent = last_sent(tx, link.tracker, link.remote_id)
    return {path: value for path, value in meaningful(mapping, data or {}, diff).items()
            if not (path in sent and same_native(sent[path], value))}


def meaningful(mapping: Mapping, data: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    """The part of ``diff`` (path -> wanted native value) whose record value means something
    else to the model than the wanted one (see the module rules)."""
    inbound = {fmap.path for fmap in mapping.fields.values() if fmap.inbound}
    return {path: wanted for path, wanted in diff.items()
            if path not in inbound or not _same_meaning(mapping, data, path, wanted)}


def _same_meaning(mapping: Mapping, data: dict[str, Any], path: str, wanted: Any) -> bool:
    try:
        held = mapping.to_model(data)
        desired = mapping.to_model({**data, path: wanted})
    except Exception:  # a value the mapping cannot read means something else
        return False
    return all(same_native(held.get(key), desired.get(key)) for key in set(held) | set(desired))


def differences(mapping: Mapping, escalation: Escalation, link: LinkRow,
                record_data: dict[str, Any]) -> list[Difference]:
    """Every field where the record as read differs from the escalation, classified."""
    out = []
    snapshot = link.last_data or {}
    wanted = outbound_diff(mapping, view_for(mapping, escalation), record_data)
    diff = meaningful(mapping, record_data, wanted)
    for path, wanted in diff.items():
        value = record_data.get(path)
        kind = "drift" if same_native(value, snapshot.get(path)) else "changed"
        out.append(Difference(link.tracker, link.remote_id, escalation.id, path, value, wanted, kind))
    return out
