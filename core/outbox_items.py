"""One wave's actions prepared, sent and recorded: the steps of core/outbox_batch.py.

Each kind keeps the rules of core/outbox.py, only gathered per wave:
- a create is made with today's values unless its key finds the record already (a record this
  store never tried to create is adopted and merged, not overwritten); an escalation already
  linked there is done without a call;
- an update sends only what the record may not hold yet, re-planned from the escalation as
  stored now, read in the same transaction that notes it as sent;
- a comment already on the record (sent before, reply lost) is not posted again; the record is
  read before the first comment on it in a pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from core import schema as t
from core.connector import OriginRef, RemoteRecord
from core.drift import view_for
from core.errors import TiersyncError
from core.outbox_lookup import looked_up
from core.reconcile import merge_sent, outbound_diff, still_to_write
from core.store import LinkRow, OutboxRow, StoredEscalation, _outbox
from core.store_sql import UPDATE_ACTION

if TYPE_CHECKING:
    from core.engine import CycleReport, SyncEngine
    from core.outbox import OutboxApplier

ACTIONS = select(t.outbox).where(t.outbox.c.id.in_(bindparam("b_ids", expanding=True)))


@dataclass(eq=False)
class Item:
    """One action of a wave, with what its send and its bookkeeping need."""
    applier: Any
    action: OutboxRow
    connector: Any
    stored: StoredEscalation | None = None
    link: LinkRow | None = None
    found: RemoteRecord | None = None  # create: the record its key found; comment: read before
    fields: dict = field(default_factory=dict)
    replaced: dict = field(default_factory=dict)
    origin: OriginRef | None = None
    update_queued: bool = False
    record: RemoteRecord | None = None  # the tracker's reply (a comment: the record re-read)
    comment_id: str | None = None

    def send(self) -> None:
        action, connector = self.action, self.connector
        if action.kind == "create":
            self.record = self.found or connector.create(
                self.fields, idempotency_key=action.dedupe_key, origin=self.origin)
        elif action.kind == "update":
            self.record = connector.update(action.remote_id, self.fields,
                                           expected_version=self.link.last_version)
        else:
            self.comment_id = connector.add_comment(self.link.remote_id, action.payload["body"],
                                                    public=bool(action.payload.get("public")),
                                                    **_notify(action))
            self.record = self.applier._reread_before_update(self.link, connector) \
                if self.update_queued else None

    def counted(self, report: "CycleReport") -> None:
        report.actions_done += 1


def is_late(action: OutboxRow) -> bool:
    """An action that failed before (a retry after backoff) or was replayed from the dead
    letters: the state it was planned from may have moved on since."""
    return action.last_error is not None or action.attempts > 0


def note_all(tx: Any, notes: list[dict[str, Any]]) -> None:
    """Write what each action will send, one ``executemany``."""
    if notes:
        tx.execute(UPDATE_ACTION, notes)


def _notify(action: OutboxRow) -> dict:
    notify = tuple(action.payload.get("notify") or ())  # people the tracker notifies
    return {"notify": notify} if notify else {}


def fields_for(engine: "SyncEngine", action: OutboxRow, link: LinkRow,
               stored: StoredEscalation | None) -> dict:
    """What the record needs now: re-planned from the current escalation, never the payload
    as queued (which a replay or a retry after backoff would send stale)."""
    mapping = engine.mappings.get(action.connector)
    if mapping is None or stored is None:
        return still_to_write(action.payload.get("fields", {}), link.last_data, action.sent)
    return outbound_diff(mapping, view_for(mapping, stored.escalation), link.last_data, action.sent)


# -- before sending: reads and remote look-ups ---------------------------------------------------
def prepare_reads(applier: "OutboxApplier", actions: list[OutboxRow],
                  report: "CycleReport") -> list[Item]:
    """Creates and comments: the wave's actions as stored now, escalations and links in one
    transaction; then each create's key lookup and each comment's read before."""
    reads = [a for a in actions if a.kind != "update"]
    fresh, stored, links = {}, {}, {}
    if reads:
        store = applier.store
        with store.transaction() as tx:
            ids = [a.id for a in reads if a.kind == "create"]
            fresh = {r.id: _outbox(r) for r in tx.execute(ACTIONS, {"b_ids": ids})} if ids else {}
            stored = store.get_escalations(tx, [a.escalation_id for a in reads if a.kind == "create"])
            links = store.links_of(tx, [a.escalation_id for a in reads])
    items = []
    for action in actions:
        connector = applier.engine.connectors.get(action.connector)
        if connector is None:
            applier.apply_one(action, report)  # dead-lettered there, with its reason
            continue
        try:
            item = _read_one(applier, fresh.get(action.id, action), connector, stored, links, report)
        except TiersyncError as exc:
            applier.fail(action, connector, exc, report)
            continue
        if item is not None:
            items.append(item)
    return items


def _read_one(applier, action: OutboxRow, connector, stored: dict, links: dict,
              report: "CycleReport") -> Item | None:
    if action.kind == "update":
        return Item(applier, action, connector)
    if action.kind == "comment":
        link = next((l for l in links.get(action.escalation_id, []) if l.tracker == action.connector),
                    None)
        if link is None:  # its mirror is still being created, or will never be: one by one
            applier.apply_one(action, report)
            return None
        return Item(applier, action, connector, link=link,
                    found=applier._read_before_comment(action, connector, link, report))
    return _read_create(applier, action, connector, stored.get(action.escalation_id), report)


def _read_create(applier, action: OutboxRow, connector, stored: StoredEscalation | None,
                 report: "CycleReport") -> Item | None:
    item = Item(applier, action, connector, stored=stored)
    if stored is None or stored.escalation.link_for(action.connector) is not None:
        return item  # already linked: done without a call (prepare_writes)
    if applier._lookup_too_early(action, connector, report):
        return None
    item.found = looked_up(applier, action, connector)
    item.fields = action.payload["fields"]  # what the crashed attempt sent, when found
    if item.found is None:
        engine, escalation = applier.engine, stored.escalation
        origin = escalation.origin()
        item.origin = OriginRef(origin.tracker, origin.remote_id, origin.url, escalation.title) \
            if origin else None
        item.fields = engine.planner.create_fields(escalation, action.connector,
                                                   action.payload.get("extra", {}))
    return item


# -- before sending: what will be sent, noted -----------------------------------------------------
def prepare_writes(applier: "OutboxApplier", items: list[Item], report: "CycleReport") -> list[Item]:
    """One transaction: the updates' links and escalations read, every action's note of what
    it will send written (one ``executemany``), the actions with nothing to send finished.
    The items to send; failures are recorded after, each alone."""
    if not items:
        return []
    failed, dead, out, notes = [], [], [], []
    with applier.store.transaction() as tx:
        _read_updates(applier, tx, [i for i in items if i.action.kind == "update"])
        for item in items:
            try:
                note = _plan(applier, tx, item, dead, report)
            except TiersyncError as exc:
                failed.append((item, exc))
                continue
            if note is not False:
                out.append(item)
                if note is not None:
                    notes.append(_note(applier, item.action, note))
        note_all(tx, notes)
    for item in dead:
        applier._dead(item.action, f"{item.action.connector}:{item.action.remote_id} is not linked",
                      report)
    for item, exc in failed:
        applier.fail(item.action, item.connector, exc, report)
    return out


def _read_updates(applier, tx, updates: list[Item]) -> None:
    store = applier.store
    links: dict[tuple[str, str], LinkRow] = {}
    for name in {i.action.connector for i in updates}:
        ids = [i.action.remote_id for i in updates if i.action.connector == name]
        links.update({(name, rid): l for rid, l in store.links_for(tx, name, ids).items()})
    stored = store.get_escalations(tx, [i.action.escalation_id for i in updates])
    for item in updates:
        item.link = links.get((item.action.connector, item.action.remote_id))
        item.stored = stored.get(item.action.escalation_id)


def _plan(applier, tx, item: Item, dead: list, report: "CycleReport") -> Any:
    """The note of what ``item`` will send (None: nothing to note), or False: not to be sent."""
    action, now = item.action, applier.engine.clock()
    if action.kind == "create":
        if item.stored is None or item.stored.escalation.link_for(action.connector) is not None:
            return _finish(applier, tx, action, "already linked")
        return None if item.found is not None else {"create": True, "create_at": now.isoformat()}
    if action.kind == "update":
        if item.link is None:
            dead.append(item)
            return False
        item.fields = fields_for(applier.engine, action, item.link, item.stored)
        if not item.fields:
            return _finish(applier, tx, action, "nothing to write")
        item.replaced = {path: (item.link.last_data or {}).get(path) for path in item.fields}
        return merge_sent(action.sent, item.fields)
    if applier._landed(tx, action, item.found, item.link, action.payload["body"], report):
        return False
    item.update_queued = applier.store.pending_update(tx, item.link.tracker,
                                                      item.link.remote_id) is not None
    return {"comment": item.link.remote_id}


def _finish(applier, tx, action: OutboxRow, result: str) -> bool:
    applier.store.finish_action(tx, action.id, "done", applier.engine.clock())
    applier._audit_tx(tx, action, "action-done", result)
    return False


def _note(applier, action: OutboxRow, sent: Any) -> dict:
    return {"b_id": action.id, "result": {"sent": sent}, "updated_at": applier.engine.clock()}


# -- after sending: what landed ------------------------------------------------------------------
def land_one(applier: "OutboxApplier", tx, item: Item, report: "CycleReport") -> dict:
    """Record what landed for ``item`` in ``tx``; the parameters that finish its action."""
    action = item.action
    if action.kind == "create":
        result = _land_create(applier, tx, item, report)
    elif action.kind == "update":
        result = _land_update(applier, tx, item)
    else:
        result = _land_comment(applier, tx, item)
    return {"b_id": action.id, "state": "done", "updated_at": applier.engine.clock(),
            "last_error": None, "result": result}


def _land_create(applier, tx, item: Item, report: "CycleReport") -> dict:
    action, record, engine = item.action, item.record, applier.engine
    found = item.found is not None
    foreign = found and action.sent is None  # tiersync wrote nothing here: its values merged
    stored = applier.store.get_escalation(tx, action.escalation_id)
    link = LinkRow(tracker=action.connector, remote_id=record.id, escalation_id=action.escalation_id,
                   role="mirror", key=record.key, url=record.url)
    engine.planner.adopt_mirror(tx, stored, link, record, engine.clock(), report.run_id,
                                snapshot=not foreign)
    applier._audit_tx(tx, action, "created" if not found else "create-found-existing",
                      f"{action.connector}:{record.key or record.id}", remote_id=record.id)
    if foreign:
        engine.process_records(tx, action.connector, [record], report)
    else:
        applier._written(tx, action, record, item.fields, {})
    return {"remote_id": record.id, "found_existing": found}


def _land_update(applier, tx, item: Item) -> dict:
    action, record, link = item.action, item.record, item.link
    applier.engine._remember(link, record)
    applier.store.save_link(tx, link, applier.engine.clock())
    applier._audit_tx(tx, action, "updated", f"version {record.version}", after=item.fields)
    applier._written(tx, action, record, item.fields, item.replaced)
    return {"version": record.version, "fields": item.fields}


def _land_comment(applier, tx, item: Item) -> dict:
    action, link = item.action, item.link
    applier._after_comment(tx, link, item.comment_id, item.record)
    applier._audit_tx(tx, action, "commented", f"comment {item.comment_id}",
                      remote_id=link.remote_id,
                      after={"public": bool(action.payload.get("public")),
                             "body": action.payload["body"], **_notify(action)})
    return {"comment_id": item.comment_id, "remote_id": link.remote_id}
