"""One wave action's steps: read, note, send, and the landing left to the chain
(core/outbox_batch.py).

Each kind keeps the rules of core/outbox.py, only its transactions chained:
- a create is made with today's values unless its key finds the record already (a record this
  store never tried to create is adopted and merged, not overwritten); an escalation already
  linked there is done without a call;
- an update sends only what the record may not hold yet, re-planned from the escalation as
  stored now, read in the same transaction that notes it as sent;
- a comment already on the record (sent before, reply lost) is not posted again; the record is
  read before the first comment on it in a pass; the comments queued right after it for the
  record go in the same comment, each part checked on its own (core/outbox_group.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from core import schema as t
from core.connector import OriginRef
from core.create_lag import create_note
from core.outbox_group import finish, outgoing
from core.outbox_lookup import looked_up
from core.reconcile import merge_sent
from core.store import LinkRow, OutboxRow, StoredEscalation, _outbox

if TYPE_CHECKING:
    from core.engine import CycleReport
    from core.outbox import OutboxApplier
    from core.outbox_batch import Chain

ACTIONS = select(t.outbox).where(t.outbox.c.id.in_(bindparam("b_ids", expanding=True)))


def is_late(action: OutboxRow) -> bool:
    """An action that failed before (a retry after backoff) or was replayed from the dead
    letters: the state it was planned from may have moved on since."""
    return action.last_error is not None or action.attempts > 0


def batched(applier: "OutboxApplier", action: OutboxRow, carried: set[tuple[str, str]]) -> bool:
    """Whether the action goes the chained way (see core/outbox_batch.py's rules)."""
    connector = applier.engine.connectors.get(action.connector)
    if connector is None or action.id in applier.merged:
        return False
    carries = connector.capabilities().versioned_comments  # core/outbox_write.py's one write
    if action.kind == "create":
        return True
    if action.kind == "update":
        return not is_late(action) and not (carries and
                                             (action.escalation_id, action.connector) in carried)
    return action.kind == "comment" and not carries


@dataclass
class WaveReads:
    """What a wave's creates and comments read from the store at its start."""
    actions: dict[int, OutboxRow] = field(default_factory=dict)
    stored: dict[str, StoredEscalation] = field(default_factory=dict)
    links: dict[str, list[LinkRow]] = field(default_factory=dict)

    def link_of(self, action: OutboxRow) -> LinkRow | None:
        return next((l for l in self.links.get(action.escalation_id, [])
                     if l.tracker == action.connector), None)


def read_wave(applier: "OutboxApplier", actions: list[OutboxRow]) -> WaveReads:
    """The creates' and comments' actions as stored now, escalations and links: one
    transaction."""
    reads = [a for a in actions if a.kind in ("create", "comment")]
    if not reads:
        return WaveReads()
    store = applier.store
    with store.transaction() as tx:
        fresh = {r.id: _outbox(r) for r in tx.execute(ACTIONS, {"b_ids": [a.id for a in reads]})}
        stored = store.get_escalations(tx, [a.escalation_id for a in reads if a.kind == "create"])
        links = store.links_of(tx, [a.escalation_id for a in reads if a.kind == "comment"])
    return WaveReads(fresh, stored, links)


def step(applier: "OutboxApplier", chain: "Chain", reads: WaveReads, action: OutboxRow,
         connector: Any, report: "CycleReport") -> None:
    """Apply one action; what landed is left to ``chain``."""
    action = reads.actions.get(action.id, action)  # as stored now (a hint pass may have sent it)
    if action.state != "pending":
        return
    {"create": _create, "update": _update, "comment": _comment}[action.kind](
        applier, chain, reads, action, connector, report)


# -- creates ---------------------------------------------------------------------------------------
def _create(applier, chain, reads: WaveReads, action: OutboxRow, connector, report) -> None:
    engine = applier.engine
    stored = reads.stored.get(action.escalation_id)
    if stored is None or stored.escalation.link_for(action.connector) is not None:
        chain.commit(lambda tx: _finish(applier, tx, action, "already linked"))
        return
    if applier._lookup_too_early(action, connector, report):
        return
    record = looked_up(applier, action, connector)
    found = record is not None
    fields = action.payload["fields"]  # what the crashed attempt sent, when found
    if record is None:
        origin = stored.escalation.origin()
        ref = OriginRef(origin.tracker, origin.remote_id, origin.url, stored.escalation.title) \
            if origin else None
        fields = engine.planner.create_fields(stored.escalation, action.connector,
                                              action.payload.get("extra", {}))
        chain.commit(lambda tx: applier.store.note_sent(tx, action.id, create_note(engine),
                                                        engine.clock()))
        try:
            record = connector.create(fields, idempotency_key=action.dedupe_key, origin=ref)
        except Exception:
            applier._create_unknown_since_now(action)
            raise
    chain.hold(action, connector,
               lambda tx: _land_create(applier, tx, action, record, fields, found, report))


def _land_create(applier, tx, action: OutboxRow, record, fields: dict, found: bool, report) -> None:
    engine, store = applier.engine, applier.store
    foreign = found and action.sent is None  # tiersync wrote nothing here: its values merged
    stored = store.get_escalation(tx, action.escalation_id)
    link = LinkRow(tracker=action.connector, remote_id=record.id, escalation_id=action.escalation_id,
                   role="mirror", key=record.key, url=record.url)
    engine.planner.adopt_mirror(tx, stored, link, record, engine.clock(), report.run_id,
                                snapshot=not foreign)
    store.finish_action(tx, action.id, "done", engine.clock(),
                        result={"remote_id": record.id, "found_existing": found})
    applier._audit_tx(tx, action, "created" if not found else "create-found-existing",
                      f"{action.connector}:{record.key or record.id}", remote_id=record.id)
    if foreign:
        engine.process_records(tx, action.connector, [record], report)
    else:
        applier._written(tx, action, record, fields, {})


# -- updates ---------------------------------------------------------------------------------------
def _update(applier, chain, reads: WaveReads, action: OutboxRow, connector, report) -> None:
    store, engine = applier.store, applier.engine
    planned: dict[str, Any] = {}

    def note(tx) -> None:
        link = store.links_for(tx, action.connector, [action.remote_id]).get(action.remote_id)
        fields = applier._fields_in(tx, action, link) if link is not None else {}
        if fields:
            store.note_sent(tx, action.id, merge_sent(action.sent, fields), engine.clock())
        elif link is not None:
            _finish(applier, tx, action, "nothing to write")
        planned.update(link=link, fields=fields)

    chain.commit(note)
    link, fields = planned["link"], planned["fields"]
    if link is None:
        applier._dead(action, f"{action.connector}:{action.remote_id} is not linked", report)
        return
    if not fields:
        return
    replaced = {path: (link.last_data or {}).get(path) for path in fields}
    record = connector.update(action.remote_id, fields, expected_version=link.last_version)
    if connector.capabilities().update_reads_record:  # read after the write: good as the
        applier.read[(action.connector, action.remote_id)] = record  # read before a comment
    chain.hold(action, connector,
               lambda tx: _land_update(applier, tx, action, link, record, fields, replaced))


def _land_update(applier, tx, action: OutboxRow, link: LinkRow, record, fields: dict,
                 replaced: dict) -> None:
    engine = applier.engine
    engine._remember(link, record)
    applier.store.save_link(tx, link, engine.clock())
    applier.store.finish_action(tx, action.id, "done", engine.clock(),
                                result={"version": record.version, "fields": fields})
    applier._audit_tx(tx, action, "updated", f"version {record.version}", after=fields)
    applier._written(tx, action, record, fields, replaced)


# -- comments --------------------------------------------------------------------------------------
def _comment(applier, chain, reads: WaveReads, action: OutboxRow, connector, report) -> None:
    link = reads.link_of(action)
    if link is None:  # its mirror is still being created, or will never be: one by one
        chain.flush()
        applier.apply_one(action, report)
        return
    store = applier.store
    record = applier._read_before_comment(action, connector, link, report)
    planned: dict[str, Any] = {}

    def note(tx) -> None:  # what is found, or what will be sent, is noted (joined comments:
        planned["parts"] = applier.unlanded(tx, action, record, link, report)  # outbox_group)
        if planned["parts"]:
            planned["queued"] = store.pending_update(tx, link.tracker, link.remote_id) is not None

    chain.commit(note)
    parts = planned["parts"]
    if not parts:
        return
    comment = outgoing(parts)
    notify = {"notify": comment.notify} if comment.notify else {}  # people the tracker notifies
    comment_id = connector.add_comment(link.remote_id, comment.body, public=comment.public, **notify)
    after = applier._reread_before_update(link, connector) if planned["queued"] else None
    chain.hold(action, connector,
               lambda tx: _land_comment(applier, tx, parts, link, comment_id, after),
               count=len(parts))


def _land_comment(applier, tx, parts: list[OutboxRow], link: LinkRow, comment_id: str,
                  record) -> None:
    applier._after_comment(tx, link, comment_id, record)
    finish(applier, tx, parts, link.remote_id, comment_id)


# -- shared ----------------------------------------------------------------------------------------
def _finish(applier, tx, action: OutboxRow, result: str) -> None:
    applier.store.finish_action(tx, action.id, "done", applier.engine.clock())
    applier._audit_tx(tx, action, "action-done", result)
