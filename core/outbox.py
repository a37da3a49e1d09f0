"""Applies queued actions through the connectors, never one blocking the others.

An action is stored before it is sent. A create first looks up its idempotency key, so a crash
between the remote create and the local "done" never duplicates. An update carries the expected
remote version; on Conflict the record is re-read and reconciled, which queues a fresh update if
one is still needed. Failures back off exponentially (or as the tracker's Retry-After says) and
an action that keeps failing is dead-lettered; neither blocks other actions, and neither does an
unexpected exception raised while applying one action (its traceback logged, it is retried and
dead-lettered like any failure). A claimed batch is applied in waves, the bookkeeping of each
send chained with the next one's (core/outbox_batch.py); the webhook hint thread's actions and
the kinds the waves leave alone go one by one through ``apply_one``.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from cachetools import LRUCache

from core.connector import TIERSYNC_COMMENT_MARK, OriginRef, RemoteRecord
from core.audit import AuditEntry
from core.errors import (AuthError, Conflict, ConnectorError, NotFound, PermanentError, RateLimited,
                         Retryable, TiersyncError)
from core.attachments_send import FileSender
from core.drift import view_for
from core.outbox_group import finish, followers, normal, occurrences, outgoing
from core.outbox_batch import apply_wave, carried_records, waves
from core.outbox_items import is_late
from core.outbox_lookup import look_up_keys, looked_up
from core.outbox_write import carry_comment, send_comment
from core.create_lag import create_note, last_create_write
from core.provenance import record_write
from core.lanes import note_rate_limited, rate_blocked
from core.reconcile import merge_sent, outbound_diff, still_to_write
from core.shared import claim, release
from core.store import LinkRow, OutboxRow, data_hash

if TYPE_CHECKING:
    from core.engine import CycleReport, SyncEngine

log = logging.getLogger("tiersync.outbox")
READ_KEPT = 1000  # records read before comments kept in a pass (at least 4 claimed batches)


class OutboxApplier:
    def __init__(self, engine: "SyncEngine"):
        self.engine = engine
        self.store = engine.store
        self.blocked: set[str] = set()  # connectors that are rate limited or refuse credentials
        # records read before commenting this pass (a comment after an update, or a second
        # comment, reuses the read): the most recent ones, so a pass over N records does not
        # hold N records; one evicted is read again, as on a first comment
        self.read: LRUCache[tuple[str, str], RemoteRecord] = LRUCache(
            maxsize=max(READ_KEPT, 4 * engine.settings.outbox_batch))
        self.files = FileSender(self)  # attachments (core/attachments_send.py)
        self.looked_up: dict[tuple[str, str], RemoteRecord | None] = {}  # batch key lookups
        self.merged: set[int] = set()  # comments sent with their update (core/outbox_write.py)

    def apply(self, report: "CycleReport", stop: Callable[[], bool],
              connector: str | None = None) -> None:
        """Send due actions (of ``connector`` only, when given), claimed batch by batch so that
        other daemons on the store take other records' actions (core/shared.py); an action
        left pending holds its record's later actions back until the next pass."""
        self.blocked |= rate_blocked(self.engine)
        claimed: list[int] = []
        held: set[tuple[str, str]] = set()
        try:
            self._apply_claimed(report, stop, connector, claimed, held)
        finally:
            self.files.close()  # the files read this pass (core/attachments_send.py)
            if claimed:
                with self.store.transaction() as tx:
                    release(tx, self.engine.worker_id, claimed)

    def _apply_claimed(self, report: "CycleReport", stop: Callable[[], bool], connector: str | None,
                       claimed: list[int], held: set[tuple[str, str]]) -> None:
        after_id = 0
        while not stop():
            with self.store.transaction() as tx:
                batch = claim(tx, self.engine.worker_id, self.engine.clock(),
                              self.engine.settings.outbox_batch, after_id, connector, self.blocked)
            if not batch:
                return
            claimed.extend(a.id for a in batch)
            look_up_keys(self, batch)
            after_id = batch[-1].id
            carried = carried_records(self, batch)
            for wave in waves(batch):  # one action per escalation each (core/outbox_batch.py)
                todo = [a for a in wave if a.connector not in self.blocked
                        and (a.escalation_id, a.connector) not in held]
                if not todo:
                    continue
                if stop():
                    report.stopped_early = True
                    return
                if self.engine.worker is not None and not self.engine.worker.alive():
                    return  # our lease may have lapsed: the claims may be another daemon's now
                held |= apply_wave(self, todo, report, stop, carried)

    def apply_one(self, action: OutboxRow, report: "CycleReport") -> None:
        if action.id in self.merged:
            return  # done already, in its update's write
        connector = self.engine.connectors.get(action.connector)
        if connector is None:
            self._dead(action, f"no connector named {action.connector!r} is configured", report)
            return
        try:
            handler = {"create": self._create, "update": self._update, "comment": self._comment,
                       "attachment": self.files.apply}[action.kind]
            handler(action, connector, report)
        except Exception as exc:  # noqa: BLE001 - this action's failure alone (``failed``)
            self.failed(action, connector, exc, report)

    def failed(self, action: OutboxRow, connector, exc: Exception, report: "CycleReport") -> None:
        """Record a failed attempt, for this action alone: a conflict re-reads and re-plans,
        refused credentials or a rate limit leave the tracker alone for this pass, a passing
        failure retries later, a permanent one dead-letters the action. Any other exception
        (a bug, a library's surprise) is logged with its traceback and retried like a passing
        failure, so after the usual attempts it is a dead letter, never the end of the daemon."""
        if isinstance(exc, Conflict):
            self._conflict(action, connector, exc, report)
        elif isinstance(exc, AuthError):
            self.blocked.add(action.connector)
            report.connector_errors.append(f"{action.connector}: {exc}")
            self._audit(action, "action-failed", str(exc))
        elif isinstance(exc, RateLimited):
            self.blocked.add(action.connector)
            note_rate_limited(self.engine, action.connector, exc)
            self._retry_later(action, exc, report, wait=exc.retry_after)
        elif isinstance(exc, Retryable):
            self._retry_later(action, exc, report)
        elif isinstance(exc, (NotFound, PermanentError)):
            self._dead(action, str(exc), report)
        elif isinstance(exc, TiersyncError):
            self._dead(action, f"{type(exc).__name__}: {exc}", report)
        else:
            log.error("%s %s for %s raised an unexpected %s: %s", action.kind, action.connector,
                      action.escalation_id, type(exc).__name__, exc,
                      exc_info=(type(exc), exc, exc.__traceback__), extra=_fields(action))
            self._retry_later(action, Unexpected(f"unexpected {type(exc).__name__}: {exc}"), report)

    # -- kinds ----------------------------------------------------------------------------------
    def _create(self, action: OutboxRow, connector, report: "CycleReport") -> None:
        """Create the mirror with today's values (a replayed or late create never sends the
        payload it was queued with). A record found under the key that this store never tried
        to create (a lost or restored store) is adopted and its values merged, not overwritten."""
        key = action.dedupe_key
        with self.store.transaction() as tx:
            stored = self.store.get_escalation(tx, action.escalation_id)
            existing = stored.escalation.link_for(action.connector) if stored else None
            # as stored now: another sender in this process (a lane, a hint pass) may have sent
            # it since the batch was claimed, and then only a lookup of the key may decide
            action = self.store.get_action(tx, action.id) or action
        if stored is None or existing is not None:
            self._finish(action, "done", "already linked")
            return
        if self._lookup_too_early(action, connector, report):
            return
        record = looked_up(self, action, connector)
        found = record is not None
        fields = action.payload["fields"]  # what the crashed attempt sent, when found
        if record is None:
            origin = stored.escalation.origin()
            ref = OriginRef(origin.tracker, origin.remote_id, origin.url, stored.escalation.title) \
                if origin else None
            fields = self.engine.planner.create_fields(stored.escalation, action.connector,
                                                       action.payload.get("extra", {}))
            with self.store.transaction() as tx:
                self.store.note_sent(tx, action.id, create_note(self.engine), self.engine.clock())
            try:
                record = connector.create(fields, idempotency_key=key, origin=ref)
            except Exception:
                self._create_unknown_since_now(action)
                raise
        foreign = found and action.sent is None
        with self.store.transaction() as tx:
            stored = self.store.get_escalation(tx, action.escalation_id)
            link = LinkRow(tracker=action.connector, remote_id=record.id,
                           escalation_id=action.escalation_id, role="mirror", key=record.key,
                           url=record.url)
            self.engine.planner.adopt_mirror(tx, stored, link, record, self.engine.clock(),
                                             report.run_id, snapshot=not foreign)
            self.store.finish_action(tx, action.id, "done", self.engine.clock(),
                                     result={"remote_id": record.id, "found_existing": found})
            self._audit_tx(tx, action, "created" if not found else "create-found-existing",
                           f"{action.connector}:{record.key or record.id}", remote_id=record.id)
            if foreign:  # tiersync wrote nothing here: its values are the tracker's, merged
                self.engine.process_records(tx, action.connector, [record], report)
            else:
                self._written(tx, action, record, fields, {})
        report.actions_done += 1

    def _lookup_too_early(self, action: OutboxRow, connector, report: "CycleReport") -> bool:
        """After a create that may have gone out (lost reply, or the process died), "not found"
        by idempotency key only counts once the tracker's lookup can see it
        (``Capabilities.lookup_lag_seconds``, Jira's search index); until then try later."""
        sent = action.sent if isinstance(action.sent, dict) else {}
        lag = connector.capabilities().lookup_lag_seconds
        if not lag or "create_at" not in sent:
            return False
        waited = (self.engine.clock() - last_create_write(self.engine, sent)).total_seconds()
        if waited >= lag:
            return False
        self._retry_later(action, Retryable(f"{action.connector}: a create may have gone out "
                                            f"{waited:.1f}s ago; looking it up after {lag:.0f}s",
                                            tracker=action.connector), report, wait=lag - waited)
        return True

    def _create_unknown_since_now(self, action: OutboxRow) -> None:
        """A create attempt that failed may have landed, and may have written to the record
        until now (its back link, its status): the lookup lag runs from here (core/create_lag.py)."""
        with self.store.transaction() as tx:
            self.store.note_sent(tx, action.id, create_note(self.engine), self.engine.clock())

    def _update(self, action: OutboxRow, connector, report: "CycleReport") -> None:
        prepared = self._prepare_update(action, connector, report)
        if prepared is None:
            return
        link, fields = prepared
        if carry_comment(self, action, connector, link, fields, report):
            return
        replaced = {path: (link.last_data or {}).get(path) for path in fields}
        record = connector.update(action.remote_id, fields, expected_version=link.last_version)
        if connector.capabilities().update_reads_record:  # read after the write: good as the
            self.read[(action.connector, action.remote_id)] = record  # read before a comment
        with self.store.transaction() as tx:
            self.engine._remember(link, record)
            self.store.save_link(tx, link, self.engine.clock())
            self.store.finish_action(tx, action.id, "done", self.engine.clock(),
                                     result={"version": record.version, "fields": fields})
            self._audit_tx(tx, action, "updated", f"version {record.version}", after=fields)
            self._written(tx, action, record, fields, replaced)
        report.actions_done += 1

    def _prepare_update(self, action: OutboxRow, connector,
                        report: "CycleReport") -> tuple[LinkRow, dict] | None:
        """The link and today's values, only where the record may not hold them yet (a write
        that landed without a recorded reply, and was read back since, is not sent again),
        noted as sent before they are: link, values and note in one transaction."""
        if is_late(action):  # the state may have moved on: read the target as it is today
            return self._prepare_late_update(action, connector, report)
        with self.store.transaction() as tx:
            link = self.store.links_for(tx, action.connector, [action.remote_id]).get(action.remote_id)
            fields = self._fields_in(tx, action, link) if link is not None else {}
            if fields:
                self.store.note_sent(tx, action.id, merge_sent(action.sent, fields), self.engine.clock())
        return self._to_send(action, link, fields, report)

    def _prepare_late_update(self, action: OutboxRow, connector,
                             report: "CycleReport") -> tuple[LinkRow, dict] | None:
        link = self._link(action)
        if link is not None:
            link = self._refresh(action, connector, report) or link
            with self.store.transaction() as tx:
                fields = self._fields_in(tx, action, link)
                if fields:
                    self.store.note_sent(tx, action.id, merge_sent(action.sent, fields),
                                         self.engine.clock())
        return self._to_send(action, link, fields if link is not None else {}, report)

    def _to_send(self, action: OutboxRow, link: LinkRow | None, fields: dict,
                 report: "CycleReport") -> tuple[LinkRow, dict] | None:
        if link is None:
            self._dead(action, f"{action.connector}:{action.remote_id} is not linked", report)
            return None
        if not fields:
            self._finish(action, "done", "nothing to write")
            return None
        return link, fields

    def _refresh(self, action: OutboxRow, connector, report: "CycleReport") -> LinkRow | None:
        """Re-read the target record and reconcile it, so a late action is planned against the
        record as it is now, not as it was when the action was queued."""
        record = connector.get(action.remote_id)
        with self.store.transaction() as tx:
            self.engine.process_records(tx, action.connector, [record], report)
            return self.store.links_for(tx, action.connector, [action.remote_id]).get(action.remote_id)

    def _fields_in(self, tx, action: OutboxRow, link: LinkRow) -> dict:
        """What the record needs now: re-planned from the current escalation, never the
        payload as queued (which a replay or a retry after backoff would send stale)."""
        mapping = self.engine.mappings.get(action.connector)
        stored = self.store.get_escalation(tx, action.escalation_id)
        if mapping is None or stored is None:
            return still_to_write(action.payload.get("fields", {}), link.last_data, action.sent)
        return outbound_diff(mapping, view_for(mapping, stored.escalation), link.last_data, action.sent)

    def _comment(self, action: OutboxRow, connector, report: "CycleReport") -> None:
        link = self._link_for_escalation(action)
        if link is None:
            with self.store.transaction() as tx:
                waiting = self.store.pending_create(tx, action.escalation_id, action.connector)
            if waiting is None:
                self._dead(action, f"escalation has no record in {action.connector}", report)
            return  # the mirror is still being created: try again next cycle
        if send_comment(self, action, connector, link, report):
            return  # version-checked, no read needed (core/outbox_write.py)
        record = self._read_before_comment(action, connector, link, report)
        # sent before (reply lost), or posted by a store that was lost or restored since: a
        # comment already on the record is not posted again, nor a part of one joined with it
        with self.store.transaction() as tx:  # what is found, or what will be sent, is noted
            parts = self.unlanded(tx, action, record, link, report)
            if not parts:
                return
            update_queued = self.store.pending_update(tx, link.tracker, link.remote_id) is not None
        comment = outgoing(parts)  # core/outbox_group.py
        extra = {"notify": comment.notify} if comment.notify else {}  # people the tracker notifies
        comment_id = connector.add_comment(link.remote_id, comment.body, public=comment.public,
                                           **extra)
        record = self._reread_before_update(link, connector) if update_queued else None
        with self.store.transaction() as tx:
            self._after_comment(tx, link, comment_id, record)
            finish(self, tx, parts, link.remote_id, comment_id)
        report.actions_done += len(parts)

    def _read_before_comment(self, action: OutboxRow, connector, link: LinkRow,
                             report: "CycleReport") -> RemoteRecord | None:
        """Read the record before the first comment on it in this pass, and reconcile what
        changed in the tracker since the snapshot.

        A comment carries no expected version, and it moves the record's update time: a change
        made in the tracker just before it would later look as recent as the comment, and could
        wrongly win over a newer change of the same field elsewhere. Reading first dates such a
        change by the record as it is before tiersync writes on it.
        """
        key = (action.connector, link.remote_id)
        if key in self.read and action.sent is None:
            return self.read[key]
        record = connector.get(link.remote_id)
        self.read[key] = record
        if record.version != link.last_version:
            with self.store.transaction() as tx:
                self.engine.process_records(tx, action.connector, [record], report)
        return record

    def _landed(self, tx, action: OutboxRow, record: RemoteRecord | None, link: LinkRow, body: str,
                report: "CycleReport") -> bool:
        """Whether a comment sent before (reply lost, or the process died before recording it)
        is on the record: more copies of this body stand there, alone or as parts of a joined
        comment (core/outbox_group.py), than actions with this body recorded as done there."""
        if record is None:
            return False
        found: Counter = Counter()
        for comment in record.comments:
            count = occurrences(comment.body, body)
            if count:
                found[comment.id] += count
        if not found:
            return False
        claimed = Counter(str((a.result or {}).get("comment_id"))
                          for a in self.store.done_comments(tx, action.escalation_id, action.connector)
                          if a.id != action.id and _same_text(a.payload.get("body", ""), body)
                          and (a.result or {}).get("remote_id") in (None, link.remote_id))
        free = [cid for cid, count in found.items() if count > claimed[cid]]
        if sum(found.values()) <= sum(claimed.values()) or not free:
            return False
        self.store.finish_action(tx, action.id, "done", self.engine.clock(),
                                 result={"comment_id": free[0], "remote_id": link.remote_id,
                                         "found_existing": True})
        self._audit_tx(tx, action, "comment-found-existing", f"comment {free[0]}",
                       remote_id=link.remote_id)
        report.actions_done += 1
        return True

    def unlanded(self, tx, lead: OutboxRow, record: RemoteRecord | None, link: LinkRow,
                 report: "CycleReport") -> list[OutboxRow]:
        """What to send for ``lead``: nothing when it is on the record already (done as found
        there); else ``lead`` and the comments that join it (core/outbox_group.py) that are not
        on the record yet, noted as sent, those found there done as found. The followers are
        taken out of this pass's later waves."""
        if self._landed(tx, lead, record, link, lead.payload["body"], report):
            return []
        self.store.note_sent(tx, lead.id, {"comment": link.remote_id}, self.engine.clock())
        send = [lead]
        # a lead that may have gone out before was read for afresh (``_read_before_comment``)
        for part in followers(self.store, tx, lead, self.engine.clock(), noted=lead.sent is not None):
            self.merged.add(part.id)
            if not self._landed(tx, part, record, link, part.payload["body"], report):
                self.store.note_sent(tx, part.id, {"comment": link.remote_id, "with": lead.id},
                                     self.engine.clock())
                send.append(part)
        return send

    def _reread_before_update(self, link: LinkRow, connector) -> RemoteRecord | None:
        """The record after a comment, when an update for it is queued (the caller looked
        before sending): that update carries the expected version, which the comment just moved
        on. Otherwise the next pull refreshes the snapshot; reading now would only cost requests."""
        try:
            return connector.get(link.remote_id)
        except ConnectorError:
            return None

    def _after_comment(self, tx, link: LinkRow, comment_id: str, record: RemoteRecord | None) -> None:
        """Remember the comment as ours; adopt the record's new version when it was read again
        and nothing but comments changed since the snapshot."""
        current = self.store.links_for(tx, link.tracker, [link.remote_id]).get(link.remote_id)
        if current is None:
            return
        current.seen_comments = sorted(set(current.seen_comments) | {comment_id})
        if record is not None:
            seen = set(current.seen_comments)
            ours = {c.id for c in record.comments
                    if c.id in seen or c.body.lstrip().startswith(TIERSYNC_COMMENT_MARK)}
            if record.data == (current.last_data or {}) and {c.id for c in record.comments} <= ours:
                current.last_version = record.version
                current.seen_comments = sorted(seen | ours)
                current.last_hash = data_hash(record.data, [c.id for c in record.comments])
        self.store.save_link(tx, current, self.engine.clock())

    # -- outcomes -------------------------------------------------------------------------------
    def _conflict(self, action: OutboxRow, connector, exc: Conflict, report: "CycleReport") -> None:
        """The record moved on: read it again, reconcile, and plan afresh.

        The conflict may come from this action's own earlier attempt (its reply was lost, the
        connector sent it again with the old version): reading the record while the action is
        still pending lets the engine recognise those values as its own write. The re-read, the
        reconciliation and the end of the action commit together, so a crash in between leaves
        the action pending rather than a write unaccounted for.
        """
        report.conflicts += 1
        if action.kind != "update" or not action.remote_id:
            self._retry_later(action, exc, report)
            return
        try:
            record = connector.get(action.remote_id)
        except TiersyncError as err:
            self._retry_later(action, err, report)
            return
        with self.store.transaction() as tx:
            self.engine.process_records(tx, action.connector, [record], report)
            self.store.finish_action(tx, action.id, "superseded", self.engine.clock(), error=str(exc))
            self._audit_tx(tx, action, "conflict", str(exc))
            # re-plan against the fresh snapshot even when the record itself changed nothing
            stored = self.store.get_escalation(tx, action.escalation_id)
            links = self.store.links_of(tx, [action.escalation_id])[action.escalation_id]
            self.engine.planner.plan(tx, stored.escalation, links, report.run_id)

    def _retry_later(self, action: OutboxRow, exc: Exception, report: "CycleReport",
                     wait: float | None = None) -> None:
        settings = self.engine.settings
        attempts = action.attempts + 1
        if attempts >= settings.max_attempts:
            self._dead(action, f"gave up after {attempts} attempts: {exc}", report)
            return
        delay = wait if wait is not None else min(settings.max_backoff_seconds,
                                                  settings.backoff_seconds * 2 ** (attempts - 1))
        with self.store.transaction() as tx:
            self.store.finish_action(tx, action.id, "pending", self.engine.clock(), error=str(exc),
                                     attempts=attempts,
                                     next_attempt_at=self.engine.clock() + timedelta(seconds=delay))
            self._audit_tx(tx, action, "retry-scheduled", f"attempt {attempts}: {exc}")
        report.actions_retrying += 1
        log.warning("%s %s for %s failed (attempt %d), retrying in %.0fs: %s", action.kind,
                    action.connector, action.escalation_id, attempts, delay, exc,
                    extra=_fields(action))

    def _dead(self, action: OutboxRow, reason: str, report: "CycleReport") -> None:
        with self.store.transaction() as tx:
            self.store.finish_action(tx, action.id, "dead", self.engine.clock(), error=reason,
                                     attempts=action.attempts + 1)
            self._audit_tx(tx, action, "dead-lettered", reason)
        report.actions_dead += 1
        log.error("%s %s for %s dead-lettered: %s", action.kind, action.connector,
                  action.escalation_id, reason, extra=_fields(action))

    def _finish(self, action: OutboxRow, state: str, result: str) -> None:
        with self.store.transaction() as tx:
            self.store.finish_action(tx, action.id, state, self.engine.clock())
            self._audit_tx(tx, action, f"action-{state}", result)

    # -- lookups and audit ----------------------------------------------------------------------
    def _link(self, action: OutboxRow) -> LinkRow | None:
        with self.store.transaction() as tx:
            return self.store.links_for(tx, action.connector, [action.remote_id]).get(action.remote_id)

    def _link_for_escalation(self, action: OutboxRow) -> LinkRow | None:
        with self.store.transaction() as tx:
            links = self.store.links_of(tx, [action.escalation_id])[action.escalation_id]
        return next((l for l in links if l.tracker == action.connector), None)

    def _audit(self, action: OutboxRow, what: str, result: str) -> None:
        with self.store.transaction() as tx:
            self._audit_tx(tx, action, what, result)

    def _written(self, tx, action: OutboxRow, record: RemoteRecord, fields: dict,
                 replaced: dict) -> None:
        """Provenance of every value written (``tiersync trace``)."""
        record_write(tx, self.engine.audit, run_id=self.engine.planner.run_id or "-",
                     at=self.engine.clock(), mapping=self.engine.mappings[action.connector],
                     tracker=action.connector, remote_id=record.id, version=record.version,
                     escalation_id=action.escalation_id, fields=fields, replaced=replaced,
                     extra=action.payload.get("extra", {}), rule=action.rule)

    def _audit_tx(self, tx, action: OutboxRow, what: str, result: str, *, remote_id: str | None = None,
                  after=None) -> None:
        self.engine.audit.append(tx, AuditEntry(
            run_id=self.engine.planner.run_id or "-", at=self.engine.clock(), action=what,
            escalation_id=action.escalation_id, tracker=action.connector,
            remote_id=remote_id or action.remote_id, rule=action.rule,
            after=after if after is not None else {"outbox_id": action.id, "kind": action.kind},
            result=result))


def _fields(action: OutboxRow) -> dict:
    """Structured log fields of an action (JSON logs)."""
    return {"tracker": action.connector, "record": action.remote_id,
            "action": f"{action.kind}#{action.id}", "escalation": action.escalation_id}


def _same_text(a: str, b: str) -> bool:
    """Equal comment bodies, whatever whitespace the tracker's rendering changed."""
    return normal(a) == normal(b)


class Unexpected(Exception):
    """The reason recorded for an action whose attempt raised an unexpected exception."""
