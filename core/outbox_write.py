"""One write for a record's update and the comments queued after it, and comments without a
read first, on trackers whose version-checked update can carry a comment (Zendesk).

Rules:
- Only for connectors with ``Capabilities.versioned_comments``; any other tracker keeps the
  separate update and comment, with its read first (core/outbox.py).
- An update whose record's next queued action is a comment never sent and due sends both in
  one ``Connector.write``, checked against the update's expected version, and with it the
  comments queued right after that one, joined into its body (core/outbox_group.py): a change
  with two notes is one write. All are noted as sent before it goes out and finish together,
  each comment on its own row. (That comment cannot be another worker's: an
  action is claimable only with every earlier pending action of its record, core/shared.py,
  and the update is ours.)
- A comment on its own goes the same way, without fields, checked against the link's version
  (with the comments that join it).
- The read before a comment (``_read_before_comment``) dates a change made in the tracker just
  before it, and shows a copy of the comment already there (``_landed``). The version check
  replaces that read only where it does both: the write is refused unless the record is still
  at the snapshot (nothing changed since), and every comment the snapshot saw on the record is
  accounted for (posted by this store's actions, or a person's comment the escalation holds),
  so no earlier copy of this comment can be there. Otherwise, and for a comment that may have
  gone out before (a lost reply, a crash: ``sent`` noted), the read and the landed check come
  first, as before.
- Refused (Conflict): nothing landed. The update is reconciled as any conflict; the comment
  stays queued, noted as sent, so it is read for and checked before it is sent again.
- A lost reply: the connector may send again (a first attempt that landed moved the version,
  so the resend is refused); when it gives up, both stay pending with ``sent`` noted.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.connector import Connector, Written
from core.errors import Conflict
from core.outbox_group import finish, followers, outgoing
from core.store import LinkRow, OutboxRow, data_hash

if TYPE_CHECKING:
    from core.engine import CycleReport
    from core.outbox import OutboxApplier


def carry_comment(applier: "OutboxApplier", action: OutboxRow, connector: Connector,
                  link: LinkRow, fields: dict[str, Any], report: "CycleReport") -> bool:
    """Send the update with the record's next queued comment in one write; False when the
    tracker cannot, or no comment may ride with it (the caller sends the update alone)."""
    if not connector.capabilities().versioned_comments or link.last_version is None:
        return False
    with applier.store.transaction() as tx:
        comment = _next_comment(applier, tx, action)
        if comment is None or not _accounted(applier, tx, comment, link):
            return False
        parts = [comment] + followers(applier.store, tx, comment, applier.engine.clock())
        for part in parts:
            applier.store.note_sent(tx, part.id, {"comment": link.remote_id, "with": action.id},
                                    applier.engine.clock())
    replaced = {path: (link.last_data or {}).get(path) for path in fields}
    written = connector.write(link.remote_id, fields, outgoing(parts),
                              expected_version=link.last_version)
    with applier.store.transaction() as tx:
        _adopt(applier, tx, link, written)
        now = applier.engine.clock()
        applier.store.finish_action(tx, action.id, "done", now,
                                    result={"version": written.record.version, "fields": fields})
        applier._audit_tx(tx, action, "updated", f"version {written.record.version}", after=fields)
        applier._written(tx, action, written.record, fields, replaced)
        finish(applier, tx, parts, link.remote_id, written.comment_id)
    applier.merged.update(part.id for part in parts)
    report.actions_done += 1 + len(parts)
    return True


def send_comment(applier: "OutboxApplier", action: OutboxRow, connector: Connector,
                 link: LinkRow, report: "CycleReport") -> bool:
    """Send a comment as a version-checked write without reading the record first; False:
    the caller reads first (see the rules), also after a refusal."""
    if not connector.capabilities().versioned_comments or link.last_version is None \
            or action.sent is not None:
        return False
    with applier.store.transaction() as tx:
        current = applier.store.get_action(tx, action.id)  # as stored now: its update's write
        if current is None or current.sent is not None:  # may have carried it (lost reply):
            applier.read.pop((action.connector, link.remote_id), None)  # read it as it is now
            return False
        if not _accounted(applier, tx, action, link):
            return False
        parts = [action] + followers(applier.store, tx, action, applier.engine.clock())
        for part in parts:
            sent = {"comment": link.remote_id} if part is action else \
                {"comment": link.remote_id, "with": action.id}
            applier.store.note_sent(tx, part.id, sent, applier.engine.clock())
    applier.merged.update(part.id for part in parts[1:])  # sent or noted: not alone this pass
    try:
        written = connector.write(link.remote_id, {}, outgoing(parts),
                                  expected_version=link.last_version)
    except Conflict:
        report.conflicts += 1
        applier.read.pop((action.connector, link.remote_id), None)  # read it as it is now
        applier.merged.difference_update(part.id for part in parts[1:])  # each read for later
        return False
    with applier.store.transaction() as tx:
        _adopt(applier, tx, link, written)
        finish(applier, tx, parts, link.remote_id, written.comment_id)
    report.actions_done += len(parts)
    return True


def _next_comment(applier: "OutboxApplier", tx, action: OutboxRow) -> OutboxRow | None:
    """The record's next pending action after ``action``, when it is a comment never sent
    and due now."""
    later = [a for a in applier.store.actions(tx, state="pending", escalation_id=action.escalation_id)
             if a.connector == action.connector and a.id > action.id]
    if not later:
        return None
    first = min(later, key=lambda a: a.id)
    due = first.next_attempt_at <= applier.engine.clock()
    return first if first.kind == "comment" and first.sent is None and due else None


def _accounted(applier: "OutboxApplier", tx, action: OutboxRow, link: LinkRow) -> bool:
    """Whether every comment the link's snapshot saw on the record is known: one this store
    posted there, or a person's comment the escalation holds (see the rules)."""
    stored = applier.store.get_escalation(tx, action.escalation_id)
    if stored is None or link.last_data is None:
        return False
    known = {c.source_id for c in stored.escalation.comments
             if c.source_tracker == link.tracker and c.source_id}
    known |= {str((a.result or {}).get("comment_id"))
              for a in applier.store.done_comments(tx, action.escalation_id, action.connector)
              if (a.result or {}).get("remote_id") in (None, link.remote_id)}
    return set(link.seen_comments) <= known


def _adopt(applier: "OutboxApplier", tx, link: LinkRow, written: Written) -> None:
    """The write's reply as the link's snapshot: the version check passed, so the record is
    the snapshot plus this write (its comment remembered as ours)."""
    applier.engine._remember(link, written.record)
    if written.comment_id:
        link.seen_comments = sorted(set(link.seen_comments) | {written.comment_id})
        link.last_hash = data_hash(written.record.data, [written.comment_id])
    applier.store.save_link(tx, link, applier.engine.clock())
