"""One sync cycle: pull every connector page by page, reconcile, decide, queue, then push.

Each page is one transaction: escalation state, outbox actions, audit entries and the cursor
commit together, so a crash replays at most the current page, and replaying a page has no
double effect (links, version checks and outbox de-duplication keys make it idempotent).
"""
from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from pydantic import ValidationError
from sqlalchemy.engine import Connection

from core.attachments import observe_files
from core import due
from core.connector import Connector, Page, RemoteRecord
from core.audit import AuditEntry, AuditLog
from core.decision import Decision, Observation, Policy
from core.errors import BadRecord, MappingError, RateLimited, Retryable, TiersyncError
from core.lanes import note_rate_limited, run_lanes, send_all
from core.mapping import Mapping
from core.model import Comment, Escalation, Link, LinkRole, utcnow
from core.model_json import as_json
from core.provenance import record_sources
from core.people_connector import with_people
from core.planner import Planner, escalation_id_for, idempotency_key, parse_idempotency_key
from core.reconcile import absorb_sent, apply_changes, merge, observe, older_version, stamp_field_times
from core.quarantine import clear as clear_quarantine
from core.quarantine import held as held_in_quarantine
from core.quarantine import refresh_reason
from core.redact import redact
from core.redact_records import redacting
from core.relevance import (complete_page, guarded_pages, matters, quarantine_unreadable,
                            relevant_records)
from core import page_write, tx_buffer
from core.page_read import read_page
from core.store import LinkRow, Store, StoreConflict, StoredEscalation, data_hash

log = logging.getLogger("tiersync.engine")


@dataclass
class EngineSettings:
    max_attempts: int = 8  # an outbox action that failed this often is dead-lettered
    backoff_seconds: float = 30.0  # first retry delay; doubles per attempt
    max_backoff_seconds: float = 3600.0
    outbox_batch: int = 100
    # with a policy that cannot tell when its next decision is due (core/due.py), an open
    # escalation it had nothing to say about is asked again after this long, or once it changes
    reevaluate_seconds: float = 60.0
    pull_retries: int = 2  # a pull failing before its first page is tried again this often
    retry_alert_seconds: float = 3600.0  # an action retrying longer than this makes a run exit 1
    concurrent_pulls: bool = True  # each connector in its own lane (thread), see core/lanes.py
    rate_limit_seconds: float = 60.0  # a 429 without Retry-After blocks the tracker this long


@dataclass
class CycleReport:
    run_id: str
    dry_run: bool = False
    pulled: int = 0
    opened: int = 0
    changed: int = 0
    echoes: int = 0
    stale: int = 0  # reads older than what tiersync had recorded of the record: no change
    ignored: int = 0
    quarantined: int = 0
    actions_done: int = 0
    actions_retrying: int = 0
    actions_dead: int = 0
    conflicts: int = 0
    drift_repaired: int = 0
    # still outstanding after the cycle, whichever run caused it (core/health.py; daemon readiness is core/readiness.py)
    quarantine_open: int = 0
    deadletters_open: int = 0
    retrying_too_long: int = 0
    rate_limited: int = 0  # lanes that left a tracker alone for its shared Retry-After
    connector_errors: list[str] = field(default_factory=list)
    pulled_from: list[str] = field(default_factory=list)  # connectors this process pulled
    planned: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.pop("planned")
        return data

    @property
    def exit_code(self) -> int:
        if self.connector_errors:
            return 2
        if self.quarantined or self.actions_dead or self.quarantine_open or self.deadletters_open \
                or self.retrying_too_long:
            return 1
        return 0


class SyncEngine:
    def __init__(self, store: Store, connectors: dict[str, Connector], mappings: dict[str, Mapping],
                 policy: Policy, *, settings: EngineSettings | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.store = store
        # records arrive redacted, people as addresses (core/people_connector.py)
        self.connectors = redacting(with_people(connectors, mappings, store, clock), mappings)
        self.mappings = mappings
        self.policy = policy
        self.settings = settings or EngineSettings()
        self.clock = clock
        self.audit = AuditLog()
        self.owners = _owners(mappings)
        self.planner = Planner(store, mappings, self.audit)
        self.planner.clock = clock
        self.on_page: Callable[[str, int], None] | None = None  # progress (core/progress.py)
        self.worker = None  # core.worker.Worker when several daemons share the store
        self.worker_id = f"local-{os.getpid()}-{uuid.uuid4().hex[:6]}"  # who claims actions
        self.started_at = clock()  # creates another process sent ended before it (core/create_lag.py)
        store.serialize_writes = True
        for name, connector in connectors.items():
            connector.use_mapping(mappings.get(name))

    # -- the cycle ------------------------------------------------------------------------------
    def run_cycle(self, *, dry_run: bool = False, stop: Callable[[], bool] = lambda: False,
                  run_id: str | None = None, drift_check: bool = False) -> CycleReport:
        report = CycleReport(run_id=run_id or "run-" + uuid.uuid4().hex[:12], dry_run=dry_run)
        self.planner.run_id = report.run_id
        with self.store.transaction() as tx:
            self.store.start_run(tx, report.run_id, "dry-run" if dry_run else "sync", self.clock())
        run_lanes(self, report, stop, dry_run)
        if not report.stopped_early:
            self.reevaluate(report, stop)
        if drift_check and not report.stopped_early:
            from core.drift_check import light_check
            light_check(self, report)
        if not dry_run and not report.stopped_early:
            send_all(self, report, stop)
            self.repair()
        if dry_run:
            with self.store.transaction() as tx:
                report.planned = [a.__dict__ for a in self.store.actions(tx, state="pending")]
        self._outstanding(report)
        with self.store.transaction() as tx:
            self.store.finish_run(tx, report.run_id, "ok" if report.exit_code == 0 else "partial",
                                  report.as_dict(), self.clock())
        return report

    def may_pull(self, name: str) -> bool:
        """Whether this process pulls ``name`` now: always alone, else while holding its lease."""
        return self.worker is None or self.worker.holds(name)

    def repair(self) -> None:
        """Let each connector re-add what tiersync owns and found missing (back links); a
        failure is reported and retried the next cycle."""
        for name, connector in self.connectors.items():
            try:
                if connector.repair():
                    log.info("%s: repaired back links", name)
            except TiersyncError as exc:
                log.warning("%s: repairing back links failed: %s", name, exc)

    def _outstanding(self, report: CycleReport) -> None:
        from core.health import outstanding
        with self.store.transaction() as tx:
            found = outstanding(tx, self.clock(), self.settings.retry_alert_seconds)
        report.quarantine_open = found.quarantined
        report.deadletters_open = found.dead_letters
        report.retrying_too_long = found.retrying_too_long

    def pull(self, name: str, report: CycleReport, stop: Callable[[], bool]) -> None:
        """Pull ``name`` page by page from its stored cursor.

        A transient failure (timeout, dropped connection, 5xx; not a rate limit) resumes the
        pull from the last committed page, as the next cycle would: as long as every try commits
        at least one page, or up to ``pull_retries`` times in a row when none does. A long pull
        under a steady trickle of errors so keeps going instead of restarting every cycle.
        """
        connector = self.connectors[name]
        fruitless = 0
        while True:
            with self.store.transaction() as tx:
                cursor = self.store.get_cursor(tx, name)
            pages = 0
            try:
                for page in guarded_pages(name, connector.fetch_changes(cursor)):
                    self.process_page(name, page, report)
                    pages += 1
                    if self.on_page is not None:
                        self.on_page(name, len(page.records) + len(page.unreadable))
                    if stop():
                        report.stopped_early = True
                        return
                    if not self.may_pull(name):  # the lease passed on: another daemon goes on
                        return
                return
            except Retryable as exc:
                if isinstance(exc, RateLimited):
                    note_rate_limited(self, name, exc)
                fruitless = 0 if pages else fruitless + 1
                if isinstance(exc, RateLimited) or fruitless > self.settings.pull_retries or stop():
                    self._pull_failed(name, exc, report)
                    return
                log.warning("pulling %s failed after %d page(s), resuming from the last one "
                            "committed: %s", name, pages, exc)
            except TiersyncError as exc:
                self._pull_failed(name, exc, report)
                return

    @staticmethod
    def _pull_failed(name: str, exc: Exception, report: CycleReport) -> None:
        report.connector_errors.append(f"{name}: {exc}")
        log.error("pulling %s failed: %s", name, exc, extra={"tracker": name})

    def process_page(self, name: str, page: Page, report: CycleReport) -> None:
        records = complete_page(self, name, page.records)  # before the write transaction
        with self.store.transaction() as tx:
            for bad in page.unreadable:
                report.pulled += 1
                quarantine_unreadable(self, tx, bad, report)
            self.process_records(tx, name, records, report)
            self.store.set_cursor(tx, name, page.stream, page.cursor, self.clock())

    # -- records --------------------------------------------------------------------------------
    def process_records(self, tx: Connection, name: str, records: list[RemoteRecord],
                        report: CycleReport) -> None:
        """The page as a pipeline (core/page_read.py, core/page_write.py): its state read in
        batch, each record's stages run in memory against it (a record that fails is taken
        back and quarantined, the others go on), then the page's writes in one batch."""
        latest: dict[str, RemoteRecord] = {}
        for record in records:
            latest[record.id] = record  # a page may repeat a record: keep its newest version
        state = read_page(self.store, tx, name, latest.values(), list(self.mappings),
                          lambda remote_id: self.connectors[name].get(remote_id),
                          lambda record: matters(self, name, record, False, {}))
        page_write.begin(tx, self.store, state, list(self.mappings))
        links = self.store.links_for(tx, name, list(latest))
        escalation_ids = {link.escalation_id for link in links.values()}
        for record in latest.values():
            parsed = parse_idempotency_key(record.idempotency_key)
            if record.id not in links and parsed and parsed[1] == name:
                escalation_ids.add(parsed[0])
        stored = self.store.get_escalations(tx, list(escalation_ids))
        quarantined = held_in_quarantine(tx, name, list(latest))
        report.pulled += len(latest)
        relevant = relevant_records(self, name, latest, links, stored, report)
        synced = [r for r in relevant if self._isolated(tx, name, r, links, stored, report)]
        page_write.flush(tx)  # the page's escalations, links and actions, batched
        for remote_id in quarantined - {r.id for r in relevant}:  # it no longer matters
            self._clear_quarantine(tx, name, latest[remote_id], "the record no longer matters")
        for record in synced:
            if record.id in quarantined:  # it syncs now: its quarantine entry clears
                self._clear_quarantine(tx, name, record, "the record maps and syncs now")
        observe_files(self, tx, name, relevant, holding=state.with_files)  # new attachments

    def _isolated(self, tx: Connection, name: str, record: RemoteRecord,
                  links: dict[str, LinkRow], stored: dict[str, StoredEscalation],
                  report: CycleReport) -> bool:
        """Process one record; one that fails leaves nothing in the page and is quarantined."""
        try:
            with tx_buffer.scope(tx):  # the page's writes are buffered: taken back in memory
                self._process_record(tx, name, record, links.get(record.id), stored, report)
            return True
        except (MappingError, BadRecord) as exc:
            self._quarantine(tx, name, record, str(exc), report)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(map(str, problem["loc"]))
            self._quarantine(tx, name, record, f"{self.mappings[name].source}: record maps to an "
                             f"invalid escalation: {where}: {problem['msg']}", report)
        except (StoreConflict, TiersyncError):
            raise
        except Exception as exc:  # one bad record must never stop the page
            log.exception("unexpected error on %s", record.ref,
                          extra={"tracker": name, "record": record.id})
            self._quarantine(tx, name, record, f"unexpected {type(exc).__name__}: {exc}", report)
        return False

    def _process_record(self, tx: Connection, name: str, record: RemoteRecord,
                        link: LinkRow | None, stored: dict[str, StoredEscalation],
                        report: CycleReport) -> None:
        if link is not None and self._older_than_snapshot(name, record, link):
            report.stale += 1
            return
        now = self.clock()
        mapping = self.mappings[name]
        comment_ids = [c.id for c in record.comments]
        if link is not None and link.last_hash == data_hash(record.data, comment_ids):
            report.echoes += 1
            link.key, link.last_version = record.key or link.key, record.version
            self.store.save_link(tx, link, now)
            self._repair_drift(tx, name, record, link, stored, report)
            return
        if link is not None:
            self._absorb_own_writes(tx, name, record, link)
        observed = observe(mapping, record, link)
        if link is None:
            link = self._recover_or_open(tx, name, record, stored, observed, report)
            if link is None:
                report.ignored += 1
                return
            if link.role == LinkRole.ORIGIN.value and link.last_data is None:
                self._open(tx, name, record, link, observed, stored, report)
                return
            if link.last_data is not None:
                # a mirror tiersync created, adopted just now with this record as its snapshot:
                # its values are what tiersync wrote (or the tracker's defaults), not changes
                # made in the tracker, so merging them would move the escalation back
                report.changed += 1
                return
            # a mirror from before this store (lost or restored): its values are merged
            observed = observe(mapping, record, link)
        current = stored.get(link.escalation_id) or self.store.get_escalation(tx, link.escalation_id)
        if current is None:
            raise BadRecord(f"linked to escalation {link.escalation_id}, which is not in the store",
                            tracker=name, record_id=record.id)
        updated = self._merge(tx, name, record, link, current, observed, report)
        if updated is not None:
            stored[updated.escalation.id] = updated

    def _older_than_snapshot(self, name: str, record: RemoteRecord, link: LinkRow) -> bool:
        """Whether ``record`` was read before the version the link's snapshot holds: several
        readers of one record (another daemon's pull, a webhook's read, the read after a write)
        record what they read in the order they finish, not the order they read; an older
        read compared with a newer snapshot would show the record's newer values as changed
        back (a Jira status read mid-walk seen after the create's own read moved the escalation
        waiting_on_internal -> new -> waiting_on_internal)."""
        order = self.connectors[name].capabilities().version_order
        if not older_version(order, record.version, link.last_version):
            return False
        log.info("%s read at version %s, older than the %s recorded: not a change", record.ref,
                 record.version, link.last_version, extra={"tracker": name, "record": record.id})
        return True

    def _recover_or_open(self, tx: Connection, name: str, record: RemoteRecord,
                         stored: dict[str, StoredEscalation], observed: Any,
                         report: CycleReport) -> LinkRow | None:
        parsed = parse_idempotency_key(record.idempotency_key)
        if parsed and parsed[1] == name:
            if parsed[0] not in stored:
                # a mirror of an escalation this store does not hold (yet): never a new
                # escalation; its origin's create finds it by its marker, or `tiersync rebuild`
                log.info("%s carries the marker of escalation %s, which is not in the store: "
                         "left for its origin to adopt", record.ref, parsed[0])
                return None
            # a mirror tiersync created whose "done" was never recorded (crash), or one made
            # before this store existed: adopt it
            pending = self.store.pending_create(tx, parsed[0], name)
            crashed = pending is not None and pending.sent is not None
            link = LinkRow(tracker=name, remote_id=record.id, escalation_id=parsed[0],
                           role=LinkRole.MIRROR.value, key=record.key, url=record.url)
            self.planner.adopt_mirror(tx, stored[parsed[0]], link, record, self.clock(), report.run_id,
                                      snapshot=crashed)
            return link
        rule = self.mappings[name].starts_escalation
        if rule is None or not rule.matches(record.data):
            return None
        return LinkRow(tracker=name, remote_id=record.id, escalation_id="", role=LinkRole.ORIGIN.value,
                       key=record.key, url=record.url)

    def _open(self, tx: Connection, name: str, record: RemoteRecord, link: LinkRow, observed: Any,
              stored: dict[str, StoredEscalation], report: CycleReport) -> None:
        now = self.clock()
        origin = Link(tracker=name, remote_id=record.id, key=record.key, url=record.url,
                      role=LinkRole.ORIGIN)
        base = Escalation(id=escalation_id_for(name, record.id), links=[origin], created_at=now,
                          updated_at=now, updated_by=name)
        comments = [_comment(name, c) for c in observed.new_comments]
        data = apply_changes(base, observed.full)
        data["comments"] = [c.model_dump() for c in comments]
        escalation = Escalation.model_validate(data)
        link.escalation_id = escalation.id
        field_times = stamp_field_times({}, list(observed.full), name, record.updated_at)
        obs = Observation(tracker=name, remote_id=record.id, changes=observed.full,
                          updated_at=record.updated_at, new_comments=tuple(comments), opened=True,
                          version=record.version)
        stored[escalation.id] = self._commit_change(tx, None, escalation, field_times, obs, record,
                                                    link, report)
        report.opened += 1

    def _merge(self, tx: Connection, name: str, record: RemoteRecord, link: LinkRow,
               current: StoredEscalation, observed: Any, report: CycleReport) -> StoredEscalation | None:
        before = current.escalation
        accepted, rejected = merge(before, current.field_times, name, observed.changes,
                                   record.updated_at, self.owners)
        for field_name, reason in rejected.items():
            self._audit(tx, "field-ignored", before.id, record, rule="sync.ownership",
                        before=_jsonable({field_name: observed.changes[field_name]}), result=reason)
        comments = [_comment(name, c) for c in observed.new_comments]
        if not accepted and not comments:
            report.echoes += 1
            self._remember(link, record)
            self.store.save_link(tx, link, self.clock())
            if rejected:  # the owner's value must be written back over this record's
                self.planner.plan(tx, before, self._links(tx, before.id, link), report.run_id)
            else:
                self._repair_drift(tx, name, record, link, {before.id: current}, report)
            return None
        data = apply_changes(before, accepted)
        data["comments"] = [c.model_dump() for c in before.comments + comments]
        data.update(version=before.version + 1, updated_at=self.clock(), updated_by=name)
        after = Escalation.model_validate(data)
        field_times = stamp_field_times(current.field_times, list(accepted), name, record.updated_at)
        obs = Observation(tracker=name, remote_id=record.id, changes=accepted,
                          updated_at=record.updated_at, new_comments=tuple(comments),
                          version=record.version)
        return self._commit_change(tx, before, after, field_times, obs, record, link, report)

    def _commit_change(self, tx: Connection, before: Escalation | None, after: Escalation,
                       field_times: dict, obs: Observation | None, record: RemoteRecord | None,
                       link: LinkRow | None, report: CycleReport) -> StoredEscalation:
        now = self.clock()
        decision = self.policy.decide(before, after, obs, now)
        if decision.changes:
            after = Escalation.model_validate(apply_changes(after, decision.changes))
            field_times = stamp_field_times(field_times, list(decision.changes), "policy", now)
        by = obs.tracker if obs else "policy"
        self.store.save_escalation(tx, after, field_times, by=by, run_id=report.run_id,
                                   previous_version=before.version if before else None,
                                   next_decision_at=due.next_for(
                                       self.policy, after, now, quiet=False,
                                       fallback_seconds=self.settings.reevaluate_seconds),
                                   before=before)
        if link is not None and record is not None:
            self._remember(link, record)
            self.store.save_link(tx, link, now)
        self._audit_change(tx, before, after, obs, record, decision)
        report.changed += 1
        links = self._links(tx, after.id, link)
        self.planner.plan(tx, after, links, report.run_id, decision=decision, observation=obs)
        return StoredEscalation(after, field_times)

    # -- periodic re-evaluation -----------------------------------------------------------------
    def reevaluate(self, report: CycleReport, stop: Callable[[], bool]) -> None:
        """Ask the policy about the open escalations whose next decision is due, so SLA
        warnings and breaches are caught unprompted; the others wait for their instant, kept
        in the store (core/due.py): the cost follows what is due, not what is open."""
        now = self.clock()
        with self.store.transaction() as tx:
            due.follow_policy(tx, due.fingerprint(self.policy, self.settings.reevaluate_seconds), now)
            ids = due.due_ids(tx, now)
        for start in range(0, len(ids), 200):
            if not self._decide_due(ids[start:start + 200], report, stop):
                report.stopped_early = True
                return

    def _decide_due(self, ids: list[str], report: CycleReport, stop: Callable[[], bool]) -> bool:
        """Decide a batch in one transaction with its new instants; False when stopped."""
        scheduled: list[due.Scheduled] = []
        with self.store.transaction() as tx:
            batch = self.store.get_escalations(tx, ids)
            for item in batch.values():
                if stop():
                    break
                scheduled.append(self._decide_periodic(tx, item, report))
            due.schedule(tx, scheduled)
        return len(scheduled) == len(batch)

    def _decide_periodic(self, tx: Connection, item: StoredEscalation,
                         report: CycleReport) -> due.Scheduled:
        now = self.clock()
        escalation = item.escalation
        decision = self.policy.decide(escalation, escalation, None, now)
        quiet = not (decision.changes or decision.notes or decision.mirrors)
        if not quiet:
            escalation = self._apply_periodic(tx, item, decision, report)
        at = due.next_for(self.policy, escalation, now, quiet=quiet,
                          fallback_seconds=self.settings.reevaluate_seconds)
        return due.Scheduled(escalation.id, escalation.version, at)

    def _apply_periodic(self, tx: Connection, item: StoredEscalation, decision: Decision,
                        report: CycleReport) -> Escalation:
        current = self.store.get_escalation(tx, item.escalation.id)
        if current.escalation.version != item.escalation.version:
            return current.escalation  # changed meanwhile (another lane or daemon): due again
        before, field_times = current.escalation, current.field_times
        after = before
        if decision.changes:
            data = apply_changes(before, decision.changes)
            data.update(version=before.version + 1, updated_at=self.clock(), updated_by="policy")
            after = Escalation.model_validate(data)
            field_times = stamp_field_times(field_times, list(decision.changes), "policy", self.clock())
            self.store.save_escalation(tx, after, field_times, by="policy", run_id=report.run_id,
                                       previous_version=before.version)
            report.changed += 1
        self._audit_change(tx, before, after, None, None, decision)
        self.planner.plan(tx, after, self._links(tx, after.id, None), report.run_id,
                          decision=decision)
        return after

    def _repair_drift(self, tx: Connection, name: str, record: RemoteRecord, link: LinkRow,
                      stored: dict[str, StoredEscalation], report: CycleReport) -> None:
        """A record holding values other than the escalation's, with no write pending, is
        drift (not an echo): an update with today's values is queued (see core/drift.py)."""
        from core.drift import drifted_fields
        current = stored.get(link.escalation_id)
        if current is None:
            return
        if drifted_fields(self.store, tx, self.mappings[name], current.escalation, link):
            self._audit(tx, "drift-found", current.escalation.id, record, rule="sync.drift",
                        result="record differs from the escalation; update queued")
            self.planner.plan(tx, current.escalation, self._links(tx, current.escalation.id, link),
                              report.run_id)
            report.drift_repaired += 1

    # -- helpers --------------------------------------------------------------------------------
    def _links(self, tx: Connection, escalation_id: str, fresh: LinkRow | None) -> list[LinkRow]:
        links = self.store.links_of(tx, [escalation_id])[escalation_id]
        if fresh is not None and not any(l.tracker == fresh.tracker and l.remote_id == fresh.remote_id
                                         for l in links):
            links.append(fresh)
        return links

    def _absorb_own_writes(self, tx: Connection, name: str, record: RemoteRecord,
                           link: LinkRow) -> None:
        """Take updates that went out without a recorded reply into the snapshot, where the
        record shows them: they are tiersync's own writes, not changes made in the tracker."""
        sent: dict[str, list[Any]] = {}
        for action in self.store.pending_updates(tx, name, record.id):
            for path, values in (action.sent or {}).items():
                sent.setdefault(path, []).extend(values)
        if sent:
            link.last_data = absorb_sent(link.last_data, record.data, sent)

    @staticmethod
    def _remember(link: LinkRow, record: RemoteRecord) -> None:
        link.key, link.url = record.key or link.key, record.url or link.url  # a key can change
        link.last_version = record.version
        link.last_data = dict(record.data)
        link.seen_comments = sorted(set(link.seen_comments) | {c.id for c in record.comments})
        link.last_hash = data_hash(record.data, [c.id for c in record.comments])

    def _clear_quarantine(self, tx: Connection, name: str, record: RemoteRecord, why: str) -> None:
        clear_quarantine(tx, name, record.id, self.clock())
        self._audit(tx, "quarantine-cleared", None, record, rule="mapping", result=why)

    def _quarantine(self, tx: Connection, name: str, record: RemoteRecord, reason: str,
                    report: CycleReport) -> None:
        fresh = self.store.quarantine(tx, connector=name, remote_id=record.id, version=record.version,
                                      reason=reason, payload=redact(_jsonable(record.data)),
                                      run_id=report.run_id, now=self.clock())
        if not fresh:
            refresh_reason(tx, name, record.id, reason)
        if fresh:
            report.quarantined += 1
            log.warning("quarantined %s: %s", record.ref, redact(reason),
                        extra={"tracker": name, "record": record.id})
            self._audit(tx, "quarantined", None, record, rule="mapping", result=reason)

    def _audit(self, tx: Connection, action: str, escalation_id: str | None, record: RemoteRecord,
               *, rule: str | None = None, before: Any = None, after: Any = None,
               result: str | None = None) -> None:
        self.audit.append(tx, AuditEntry(
            run_id=self.planner.run_id or "-", at=self.clock(), action=action,
            escalation_id=escalation_id, tracker=record.tracker, remote_id=record.id,
            remote_version=record.version, mapping=self.mappings[record.tracker].source,
            rule=rule, before=before, after=after, result=result))

    def _audit_change(self, tx: Connection, before: Escalation | None, after: Escalation,
                      obs: Observation | None, record: RemoteRecord | None,
                      decision: Decision) -> None:
        old = as_json(before) if before else {}
        new = as_json(after)
        changed = sorted(k for k in new if old.get(k) != new[k]
                         and k not in ("version", "updated_at", "updated_by"))
        entry = AuditEntry(
            run_id=self.planner.run_id or "-", at=self.clock(),
            action="opened" if obs and obs.opened else ("merged" if obs else "policy"),
            escalation_id=after.id, tracker=obs.tracker if obs else None,
            remote_id=obs.remote_id if obs else None, remote_version=obs.version if obs else None,
            mapping=self.mappings[obs.tracker].source if obs else None,
            rule=",".join(f"{h.family}.{h.rule}" for h in decision.hits) or "mapping",
            before={k: old.get(k) for k in changed}, after={k: new[k] for k in changed},
            result=f"version {after.version}")
        self.audit.append(tx, entry)
        record_sources(tx, after, changed, obs, decision, self.mappings, entry.run_id, entry.at)


def _comment(tracker: str, remote: Any) -> Comment:
    return Comment(body=remote.body, public=remote.public, author=remote.author,
                   created_at=remote.created_at, source_tracker=tracker, source_id=remote.id)


def _owners(mappings: dict[str, Mapping]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for name, mapping in mappings.items():
        for field_name in mapping.owned_fields():
            owners[field_name] = name
    return owners


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    import json
    return json.loads(json.dumps(data, default=str))


__all__ = ["SyncEngine", "EngineSettings", "CycleReport", "idempotency_key"]
