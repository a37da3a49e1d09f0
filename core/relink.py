"""Links stored under an older identity of a record, moved to the record's id.

Rules (no tracker knowledge: ``RemoteRecord.id`` is immutable, ``RemoteRecord.key`` may change):
- A link stored under a record's human key (stores written while a connector keyed records by
  key, such as Jira before issue ids) moves to the record's id the first time the record is read.
- A record carrying tiersync's idempotency marker of escalation E, while E's link in this
  tracker names another remote id: when reading that other id from the tracker gives back this
  very record (a Jira issue moved to another project answers to its old key), the link moves to
  the record's id. Otherwise (a different record) nothing changes.
- Moving a link also moves the connector's pending outbox actions and keeps the key and URL
  current.
"""
from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy.engine import Connection

from core.connector import RemoteRecord
from core.errors import ConnectorError
from core.planner import parse_idempotency_key
from core.store import LinkRow, Store

log = logging.getLogger("tiersync.relink")


def relink(store: Store, tx: Connection, tracker: str, records: list[RemoteRecord],
           read: Callable[[str], RemoteRecord]) -> dict[str, LinkRow]:
    """record id -> link, for ``records`` (not linked by id) found under an older identity."""
    out: dict[str, LinkRow] = {}
    by_key = {r.key: r for r in records if r.key and r.key != r.id}
    for key, link in store.links_for(tx, tracker, list(by_key)).items():
        out[by_key[key].id] = _move(store, tx, link, by_key[key])
    for record in records:
        if record.id not in out:
            link = _marked_elsewhere(store, tx, tracker, record, read)
            if link is not None:
                out[record.id] = _move(store, tx, link, record)
    return out


def _marked_elsewhere(store: Store, tx: Connection, tracker: str, record: RemoteRecord,
                      read: Callable[[str], RemoteRecord]) -> LinkRow | None:
    parsed = parse_idempotency_key(record.idempotency_key)
    if not parsed or parsed[1] != tracker:
        return None
    links = store.links_of(tx, [parsed[0]])[parsed[0]]
    other = next((l for l in links if l.tracker == tracker and l.remote_id != record.id), None)
    if other is None:
        return None
    try:
        same = read(other.remote_id).id == record.id
    except ConnectorError as exc:
        log.info("%s: %s carries the marker of %s, linked to %s, which cannot be read: %s",
                 tracker, record.id, parsed[0], other.remote_id, exc)
        return None
    return other if same else None


def _move(store: Store, tx: Connection, link: LinkRow, record: RemoteRecord) -> LinkRow:
    log.info("%s: link of escalation %s moved from %s to %s (%s)", link.tracker,
             link.escalation_id, link.remote_id, record.id, record.key or "")
    store.move_link(tx, link.tracker, link.remote_id, record.id)
    link.remote_id, link.key, link.url = record.id, record.key or link.key, record.url or link.url
    return link
