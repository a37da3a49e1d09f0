"""Turns an escalation's new state into outbox actions (inside the caller's transaction).

- an update per linked record whose native view differs from what the mapping wants there,
  merged into the pending update for that record if one is queued;
- a create per mirror the policy asks for, keyed by its idempotency key so it is queued once;
- comments: the policy's notes and copies of new comments into the other trackers, each keyed
  so that replaying a page never queues the same comment twice.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from core.connector import TIERSYNC_COMMENT_MARK, RemoteRecord
from core.audit import AuditEntry, AuditLog
from core.decision import Decision, Note, Observation
from core.mapping import Mapping
from core.model import Escalation, Link, LinkRole
from core.reconcile import outbound_diff
from core.redact import redact_text
from core.redact_records import redact_escalation
from core.store import LinkRow, Store, StoredEscalation, data_hash

KEY_PREFIX = "tiersync"


def idempotency_key(escalation_id: str, connector: str) -> str:
    return f"{KEY_PREFIX}:{escalation_id}:{connector}"


def escalation_id_for(tracker: str, remote_id: str) -> str:
    """The id of the escalation a record opens: derived from the origin record, so that a lost
    store rebuilt from the trackers gives every escalation its old id back, and the markers on
    its mirrors (``tiersync:<id>:<tracker>``) find them again."""
    digest = hashlib.sha256(f"{tracker}:{remote_id}".encode("utf-8")).hexdigest()
    return "esc-" + digest[:16]


def parse_idempotency_key(key: str | None) -> tuple[str, str] | None:
    """(escalation id, connector) from a key tiersync wrote, else None."""
    if not key or not key.startswith(KEY_PREFIX + ":"):
        return None
    parts = key.split(":")
    return (parts[1], parts[2]) if len(parts) == 3 else None


def _take_snapshot(link: LinkRow, record: RemoteRecord, snapshot: bool) -> None:
    """The record as the link's snapshot, or no snapshot (its values then count as changes)."""
    link.last_version = record.version
    if snapshot:
        link.last_data = dict(record.data)
        link.seen_comments = [c.id for c in record.comments]
        link.last_hash = data_hash(record.data, link.seen_comments)
    else:
        link.last_data, link.last_hash, link.seen_comments = None, None, []


def comment_copy_body(author: str | None, tracker: str, body: str) -> str:
    return f"{TIERSYNC_COMMENT_MARK} {author or 'someone'} wrote in {tracker}:\n\n{body}"


class Planner:
    def __init__(self, store: Store, mappings: dict[str, Mapping], audit: AuditLog):
        self.store = store
        self.mappings = mappings
        self.audit = audit
        self._run_id: str | None = None
        self.clock = None  # set by the engine

    @property
    def run_id(self) -> str | None:
        """The run being audited: the context's (``run_context``, set per thread by the daemon
        loop, the lanes and ``run``) when there is one, else the last one set."""
        from core.logfields import RUN_ID
        return RUN_ID.get() or self._run_id

    @run_id.setter
    def run_id(self, value: str | None) -> None:
        self._run_id = value

    def plan(self, tx: Connection, escalation: Escalation, links: list[LinkRow], run_id: str,
             *, decision: Decision | None = None, observation: Observation | None = None) -> None:
        if escalation.not_converted_reason:
            return  # seed 003: an unregistered sender's record is not converted: leave it alone
        now = self.clock()
        for link in links:
            self._plan_update(tx, escalation, link, now)
        self._refresh_pending_creates(tx, escalation, links, now)
        if decision is not None:
            for mirror in decision.mirrors:
                self._plan_create(tx, escalation, links, mirror.tracker, mirror.fields, mirror.rule, now)
            for note in decision.notes:
                self._plan_note(tx, escalation, links, note, observation, now)
        if observation is not None:
            for comment in observation.new_comments:
                for target in self._targets(escalation, links, "others", observation):
                    if self.mappings[target].comments.direction in ("outbound", "both"):
                        self._enqueue_comment(
                            tx, escalation.id, target,
                            comment_copy_body(comment.author, observation.tracker, comment.body),
                            self.mappings[target].comments.outbound_public,
                            f"comment:{escalation.id}:{comment.id}:{target}", "sync.comments", now)

    # -- updates and creates --------------------------------------------------------------------
    def _copy_for(self, tracker: str, escalation: Escalation) -> Escalation:
        """What may be copied into ``tracker``: redacted unless its mapping turns that off."""
        return redact_escalation(escalation) if self.mappings[tracker].redact_secrets else escalation

    def _plan_update(self, tx: Connection, escalation: Escalation, link: LinkRow, now: datetime) -> None:
        mapping = self.mappings.get(link.tracker)
        if mapping is None:
            return
        pending = self.store.pending_update(tx, link.tracker, link.remote_id)
        diff = outbound_diff(mapping, self._copy_for(link.tracker, escalation), link.last_data,
                             pending.sent if pending else None)
        if pending is not None:
            # the record holds the snapshot, or (if the queued write went out without a reply)
            # possibly what was sent: the queued write becomes exactly what may still differ
            if diff:
                self.store.replace_payload(tx, pending.id, {"fields": diff}, now)
            else:
                self.store.finish_action(tx, pending.id, "superseded", now)
            return
        if diff:
            self.store.enqueue(tx, escalation_id=escalation.id, connector=link.tracker, kind="update",
                               remote_id=link.remote_id, payload={"fields": diff}, now=now,
                               rule="sync.outbound")
            self._audit(tx, escalation, link.tracker, link.remote_id, "queued-update", diff)

    def _plan_create(self, tx: Connection, escalation: Escalation, links: list[LinkRow],
                     tracker: str, extra: dict[str, Any], rule: str, now: datetime) -> None:
        if tracker not in self.mappings:
            self._audit(tx, escalation, tracker, None, "create-skipped",
                        None, f"no connector named {tracker!r} is configured")
            return
        if any(link.tracker == tracker for link in links):
            return
        payload = {"fields": self.create_fields(escalation, tracker, extra), "extra": extra}
        key = idempotency_key(escalation.id, tracker)
        if self.store.enqueue(tx, escalation_id=escalation.id, connector=tracker, kind="create",
                              payload=payload, now=now, dedupe_key=key, rule=rule):
            self._audit(tx, escalation, tracker, None, "queued-create", payload["fields"], rule=rule)

    def create_fields(self, escalation: Escalation, tracker: str, extra: dict[str, Any]) -> dict[str, Any]:
        mapping = self.mappings[tracker]
        fields = dict(mapping.create_defaults)
        copy = self._copy_for(tracker, escalation)
        fields.update({p: v for p, v in mapping.to_tracker(copy).items() if v is not None})
        fields.update(extra)
        return fields

    def _refresh_pending_creates(self, tx: Connection, escalation: Escalation,
                                 links: list[LinkRow], now: datetime) -> None:
        for tracker in self.mappings:
            if any(link.tracker == tracker for link in links):
                continue
            pending = self.store.pending_create(tx, escalation.id, tracker)
            if pending is not None:
                extra = pending.payload.get("extra", {})
                fields = self.create_fields(escalation, tracker, extra)
                self.store.replace_payload(tx, pending.id, {"fields": fields, "extra": extra}, now)

    # -- comments -------------------------------------------------------------------------------
    def _plan_note(self, tx: Connection, escalation: Escalation, links: list[LinkRow], note: Note,
                   observation: Observation | None, now: datetime) -> None:
        for target in self._targets(escalation, links, note.target, observation):
            digest = hashlib.sha256(note.body.encode("utf-8")).hexdigest()[:12]
            key = f"note:{escalation.id}:{target}:{note.key or f'v{escalation.version}-{digest}'}"
            self._enqueue_comment(tx, escalation.id, target, f"{TIERSYNC_COMMENT_MARK} {note.body}",
                                  note.public, key, note.rule, now, note.notify)

    def _enqueue_comment(self, tx: Connection, escalation_id: str, target: str, body: str,
                         public: bool, key: str, rule: str, now: datetime,
                         notify: tuple[str, ...] = ()) -> None:
        if self.mappings[target].redact_secrets:
            body = redact_text(body)
        payload: dict[str, Any] = {"body": body, "public": public}
        if notify:
            payload["notify"] = list(notify)
        self.store.enqueue(tx, escalation_id=escalation_id, connector=target, kind="comment",
                           payload=payload, now=now, dedupe_key=key, rule=rule)

    def _targets(self, escalation: Escalation, links: list[LinkRow], target: str,
                 observation: Observation | None) -> list[str]:
        trackers = {link.tracker: link.role for link in links}
        for link in escalation.links:
            trackers.setdefault(link.tracker, link.role.value)
        if target == "origin":
            chosen = [t for t, role in trackers.items() if role == LinkRole.ORIGIN.value]
        elif target == "mirrors":
            chosen = [t for t, role in trackers.items() if role == LinkRole.MIRROR.value]
        elif target == "all":
            chosen = list(trackers)
        elif target == "others":
            skip = observation.tracker if observation else None
            chosen = [t for t in trackers if t != skip]
        else:
            chosen = [target]
        return [t for t in chosen if t in self.mappings]

    # -- mirrors that now exist -------------------------------------------------------------------
    def adopt_mirror(self, tx: Connection, stored: StoredEscalation, link: LinkRow,
                     record: RemoteRecord, now: datetime, run_id: str, *,
                     snapshot: bool = True) -> Escalation:
        """Record a created (or found) mirror: link row, model link, and comment copies.

        ``snapshot``: the record holds what tiersync wrote (it just created it), so it becomes
        the snapshot. Without it (a mirror made before this store existed: a lost or restored
        store) no snapshot is kept, so the caller's next reconciliation merges its values.
        """
        _take_snapshot(link, record, snapshot)
        self.store.save_link(tx, link, now)
        escalation = stored.escalation
        if escalation.link_for(link.tracker) is None:
            data = escalation.model_dump()
            data["links"].append(Link(tracker=link.tracker, remote_id=link.remote_id, key=link.key,
                                      url=link.url, role=LinkRole.MIRROR).model_dump())
            data.update(version=escalation.version + 1, updated_at=now, updated_by="tiersync")
            escalation = Escalation.model_validate(data)
            self.store.save_escalation(tx, escalation, stored.field_times, by="tiersync",
                                       run_id=run_id, previous_version=stored.escalation.version)
            stored.escalation = escalation
        pending = self.store.pending_create(tx, escalation.id, link.tracker)
        if pending is not None:
            self.store.finish_action(tx, pending.id, "done", now, result={"remote_id": link.remote_id})
        mapping = self.mappings[link.tracker]
        if mapping.comments.direction in ("outbound", "both"):
            for comment in escalation.comments:
                if comment.source_tracker == link.tracker:
                    continue
                self._enqueue_comment(
                    tx, escalation.id, link.tracker,
                    comment_copy_body(comment.author, comment.source_tracker or "tiersync", comment.body),
                    mapping.comments.outbound_public,
                    f"comment:{escalation.id}:{comment.id}:{link.tracker}", "sync.comments", now)
        links = self.store.links_of(tx, [escalation.id])[escalation.id]
        self.plan(tx, escalation, links, run_id)
        return escalation

    def _audit(self, tx: Connection, escalation: Escalation, tracker: str, remote_id: str | None,
               action: str, after: Any, result: str | None = None, rule: str = "sync.outbound") -> None:
        self.audit.append(tx, AuditEntry(
            run_id=self.run_id or "-", at=self.clock(), action=action, escalation_id=escalation.id,
            tracker=tracker, remote_id=remote_id, mapping=self.mappings[tracker].source
            if tracker in self.mappings else None, rule=rule, after=after, result=result))
