"""The store: escalations, links, cursors, outbox, quarantine, audit (SQLAlchemy 2 Core).

Every method takes the transaction's connection (``tx``) so that the engine commits a page's
state, outbox actions and cursor together. ``Store(url, dry_run=True)`` runs every transaction
inside one outer transaction that is rolled back when the store closes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import create_engine, event, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from core import due, history, schema as t, store_sql as q, tx_buffer
from core.tx_buffer import paged
from core.store_exec import write
from core.errors import ConfigError, TiersyncError
from core.config_secrets import mask_url
from core.model import Escalation, State
from core.model_json import as_json
from core.redact import redact, redact_text


class StoreConflict(TiersyncError):
    """Another process changed the escalation since it was read."""


@dataclass
class LinkRow:
    tracker: str
    remote_id: str
    escalation_id: str
    role: str
    key: str | None = None
    url: str | None = None
    last_version: str | None = None
    last_hash: str | None = None
    last_data: dict[str, Any] | None = None
    seen_comments: list[str] = field(default_factory=list)


@dataclass
class StoredEscalation:
    escalation: Escalation
    field_times: dict[str, dict[str, str]]


@dataclass
class OutboxRow:
    id: int
    escalation_id: str
    connector: str
    kind: str
    remote_id: str | None
    payload: dict[str, Any]
    dedupe_key: str | None
    rule: str | None
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    result: Any = None  # the outcome; while pending, {"sent": ...} once a write may have gone out

    @property
    def sent(self) -> Any:
        """What was sent before the outcome became known (None: never sent)."""
        return self.result.get("sent") if isinstance(self.result, dict) else None


def data_hash(data: dict[str, Any] | None, comments: list[str] | None = None) -> str:
    canonical = json.dumps([data or {}, sorted(comments or [])], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # let SQLAlchemy, not pysqlite, issue BEGIN, so SAVEPOINTs (dry runs, dedupe) really work
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL: a commit is durable against a crash or kill of the process
    # (the chaos bench's SIGKILL); only a power loss or OS crash may drop the last commits, never
    # corrupt the file. What those commits held is re-derived: creates are found by their
    # idempotency key, comments by their body, updates carry the expected version.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # deleted and overwritten content is zeroed, not left in free pages: what redaction or
    # prune removed is gone from the file too
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


class Store:
    def __init__(self, url: str, *, dry_run: bool = False):
        self.url = url
        self.dry_run = dry_run
        try:
            self.engine: Engine = create_engine(url, future=True)
        except Exception as exc:  # bad URL or missing driver
            raise ConfigError(f"store: cannot use {mask_url(url)!r}: {redact_text(str(exc))}") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        self._outer: Connection | None = None
        self._outer_tx = None
        self.serialize_writes = False  # set by the engine: see transaction()
        self._local = threading.local()
        self._sqlite_lock = threading.RLock()

    # -- schema ---------------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            if not self.engine.dialect.has_table(conn, "schema_version"):
                return 0
            return conn.execute(select(func.max(t.schema_version.c.version))).scalar() or 0

    def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns their descriptions. On PostgreSQL under
        an advisory lock: daemons starting together migrate one after the other."""
        if self.engine.dialect.name != "postgresql":
            return self._migrate()
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_lock(7469657273796)")
            conn.commit()
            try:
                return self._migrate()
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(7469657273796)")
                conn.commit()

    def _migrate(self) -> list[str]:
        applied = []
        current = self.schema_version()
        for number, description, step in t.MIGRATIONS:
            if number <= current:
                continue
            with self.engine.begin() as conn:
                step(conn)
                conn.execute(insert(t.schema_version).values(version=number))
            applied.append(f"{number}: {description}")
        return applied

    # -- transactions ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction. The engine's threads (one per connector) and daemons share the store
        safely: on SQLite one transaction at a time per process (SQLite has one writer anyway);
        on PostgreSQL, once ``serialize_writes`` is set, every transaction first takes the
        store's writers' lock (``core.shared.lock_store``): writers append to one audit hash
        chain, whose head already serialises them, and taking the lock first means they never
        deadlock and never read a state that another writer is about to change."""
        if self.engine.dialect.name == "sqlite":
            with self._sqlite_lock, self._begin() as conn:
                yield conn
            return
        with self._begin() as conn:
            if self.serialize_writes and not getattr(self._local, "locked", False):
                from core.shared import lock_store
                lock_store(conn)
                self._local.locked = True
                try:
                    yield conn
                finally:
                    self._local.locked = False
                return
            yield conn

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        if not self.dry_run:
            with self.engine.begin() as conn:
                yield conn
            return
        if self._outer is None:
            self._outer = self.engine.connect()
            self._outer_tx = self._outer.begin()
        nested = self._outer.begin_nested()
        try:
            yield self._outer
            tx_buffer.flush(self._outer)  # the outer transaction never commits: write them now
        except BaseException:
            nested.rollback()
            raise
        else:
            nested.commit()

    def close(self) -> None:
        if self._outer is not None:
            self._outer_tx.rollback()
            self._outer.close()
            self._outer = None
        self.engine.dispose()

    # -- escalations ----------------------------------------------------------------------------
    @paged  # within a page: its batched state and writes (core/page_write.py)
    def get_escalation(self, tx: Connection, escalation_id: str) -> StoredEscalation | None:
        row = tx.execute(q.ESCALATION, {"b_id": escalation_id}).first()
        return _stored(row) if row else None

    @paged
    def get_escalations(self, tx: Connection, ids: list[str]) -> dict[str, StoredEscalation]:
        if not ids:
            return {}
        rows = tx.execute(q.ESCALATIONS, {"b_ids": sorted(set(ids))}).all()
        return {row.id: _stored(row) for row in rows}

    @paged
    def save_escalation(self, tx: Connection, esc: Escalation, field_times: dict[str, Any], *,
                        by: str, run_id: str | None, previous_version: int | None,
                        next_decision_at: datetime | None = due.WRITE_TIME,
                        before: Escalation | None = None) -> None:
        """Insert or update (checked against ``previous_version``) and record the version; the
        next periodic decision is due at ``next_decision_at`` (None: no time-based rule), by
        default at once (core/due.py). ``before``: the escalation as read at that version, when
        the caller holds it (its data need not be read again for the history's reverse patch)."""
        data = as_json(esc)
        values = dict(version=esc.version, state=esc.state.value, data=data,
                      field_times=field_times, updated_at=esc.updated_at,
                      next_decision_at=due.written(esc, next_decision_at))
        old = None
        if previous_version is None:
            write(tx, q.INSERT_ESCALATION, dict(values, id=esc.id, created_at=esc.created_at))
        else:
            old = as_json(before) if before is not None else tx.execute(
                q.ESCALATION_DATA, {"b_id": esc.id}).scalar()
            result = write(tx, q.UPDATE_ESCALATION,
                                dict(values, b_id=esc.id, b_version=previous_version))
            if result.rowcount != 1:
                raise StoreConflict(f"escalation {esc.id} changed since version {previous_version}")
        history.record_version(tx, escalation_id=esc.id, version=esc.version, by=by,
                               at=esc.updated_at, run_id=run_id, new=data, old=old)

    def iter_escalations(self, *, open_only: bool = True, batch: int = 200) -> Iterator[list[StoredEscalation]]:
        """Pages of escalations ordered by id, each read in its own short transaction."""
        after = ""
        while True:
            with self.transaction() as tx:
                query = select(t.escalations).where(t.escalations.c.id > after)
                if open_only:
                    query = query.where(t.escalations.c.state.not_in(
                        [State.CLOSED.value, State.REJECTED.value]))
                rows = tx.execute(query.order_by(t.escalations.c.id).limit(batch)).all()
            if not rows:
                return
            after = rows[-1].id
            yield [_stored(row) for row in rows]

    def open_versions(self, tx: Connection) -> list[tuple[str, int]]:
        """(id, version) of every open escalation, ordered by id (cheap: no data is read)."""
        rows = tx.execute(select(t.escalations.c.id, t.escalations.c.version).where(
            t.escalations.c.state.not_in([State.CLOSED.value, State.REJECTED.value]))
            .order_by(t.escalations.c.id)).all()
        return [(row.id, row.version) for row in rows]

    def history_of(self, tx: Connection, escalation_id: str) -> list[dict[str, Any]]:
        """Every version still in the history, oldest first, rebuilt in full (core.history)."""
        return history.history_of(tx, escalation_id)

    # -- links ----------------------------------------------------------------------------------
    @paged
    def links_for(self, tx: Connection, tracker: str, remote_ids: list[str]) -> dict[str, LinkRow]:
        if not remote_ids:
            return {}
        rows = tx.execute(q.LINKS_FOR, {"b_tracker": tracker, "b_ids": sorted(set(remote_ids))}).all()
        return {row.remote_id: _link(row) for row in rows}

    @paged
    def links_of(self, tx: Connection, escalation_ids: list[str]) -> dict[str, list[LinkRow]]:
        out: dict[str, list[LinkRow]] = {eid: [] for eid in escalation_ids}
        if escalation_ids:
            rows = tx.execute(q.LINKS_OF, {"b_ids": sorted(set(escalation_ids))}).all()
            for row in rows:
                out[row.escalation_id].append(_link(row))
        return out

    @paged
    def save_link(self, tx: Connection, link: LinkRow, now: datetime) -> None:
        values = dict(escalation_id=link.escalation_id, key=link.key, url=link.url, role=link.role,
                      last_version=link.last_version, last_hash=link.last_hash,
                      last_data=link.last_data, seen_comments=link.seen_comments, updated_at=now)
        result = write(tx, q.UPDATE_LINK, dict(values, b_tracker=link.tracker,
                                                 b_remote_id=link.remote_id))
        if result.rowcount == 0:
            write(tx, q.INSERT_LINK, dict(values, tracker=link.tracker, remote_id=link.remote_id))

    def move_link(self, tx: Connection, tracker: str, old_id: str, new_id: str) -> None:
        """Re-key a link (and the tracker's pending actions on it) to a record's new id."""
        tx.execute(update(t.links).where((t.links.c.tracker == tracker) & (t.links.c.remote_id == old_id))
                   .values(remote_id=new_id))
        tx.execute(update(t.outbox).where((t.outbox.c.connector == tracker)
                                          & (t.outbox.c.remote_id == old_id)
                                          & (t.outbox.c.state == "pending")).values(remote_id=new_id))

    # -- cursors --------------------------------------------------------------------------------
    def get_cursor(self, tx: Connection, connector: str, stream: str = "records") -> str | None:
        return tx.execute(q.CURSOR, {"b_connector": connector, "b_stream": stream}).scalar()

    def set_cursor(self, tx: Connection, connector: str, stream: str, cursor: str | None,
                   now: datetime) -> None:
        """Store the cursor after a committed page; its position only grows."""
        where = (t.cursors.c.connector == connector) & (t.cursors.c.stream == stream)
        result = tx.execute(update(t.cursors).where(where).values(
            cursor=cursor, position=t.cursors.c.position + 1, updated_at=now))
        if result.rowcount == 0:
            tx.execute(insert(t.cursors).values(connector=connector, stream=stream, cursor=cursor,
                                                position=1, updated_at=now))

    def cursors(self, tx: Connection) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in tx.execute(select(t.cursors)).all()]

    # -- outbox ---------------------------------------------------------------------------------
    @paged
    def enqueue(self, tx: Connection, *, escalation_id: str, connector: str, kind: str,
                payload: dict[str, Any], now: datetime, remote_id: str | None = None,
                dedupe_key: str | None = None, rule: str | None = None) -> int | None:
        """Add an action; returns its id, or None when ``dedupe_key`` was queued before."""
        values = dict(escalation_id=escalation_id, connector=connector, kind=kind,
                      remote_id=remote_id, payload=payload, dedupe_key=dedupe_key, rule=rule,
                      state="pending", attempts=0, next_attempt_at=now, created_at=now,
                      updated_at=now)
        if dedupe_key is None:
            return tx.execute(q.INSERT_ACTION, values).inserted_primary_key[0]
        if tx.execute(q.DONE_KEY, {"b_key": dedupe_key}).first():
            return None  # done and pruned since
        # queued before: the unique key refuses it, in the same statement
        return tx.execute(q.upsert_action(tx.dialect.name), values).scalar()

    @paged
    def pending_update(self, tx: Connection, connector: str, remote_id: str) -> OutboxRow | None:
        row = tx.execute(q.LAST_PENDING_UPDATE, {"b_connector": connector,
                                                 "b_remote_id": remote_id}).first()
        return _outbox(row) if row else None

    @paged
    def pending_updates(self, tx: Connection, connector: str, remote_id: str) -> list[OutboxRow]:
        rows = tx.execute(q.PENDING_UPDATES, {"b_connector": connector,
                                              "b_remote_id": remote_id}).all()
        return [_outbox(row) for row in rows]

    def note_sent(self, tx: Connection, action_id: int, sent: Any, now: datetime) -> None:
        """Record, before sending, what an action is about to write: after a crash or a lost
        reply, whether it landed is unknown until the record is read again."""
        write(tx, q.UPDATE_ACTION, {"b_id": action_id, "result": {"sent": sent}, "updated_at": now})

    def done_comments(self, tx: Connection, escalation_id: str, connector: str) -> list[OutboxRow]:
        rows = tx.execute(q.DONE_COMMENTS, {"b_escalation": escalation_id,
                                            "b_connector": connector}).all()
        return [_outbox(row) for row in rows]

    def pending_after(self, tx: Connection, escalation_id: str, connector: str, after_id: int,
                      limit: int = 50) -> list[OutboxRow]:
        """The record's pending actions queued after action ``after_id``, in order (at most
        ``limit``): what may join a comment (core/outbox_group.py)."""
        rows = tx.execute(q.PENDING_AFTER, {"b_escalation": escalation_id, "b_connector": connector,
                                            "b_after": after_id, "b_limit": limit}).all()
        return [_outbox(row) for row in rows]

    @paged
    def pending_create(self, tx: Connection, escalation_id: str, connector: str) -> OutboxRow | None:
        row = tx.execute(q.PENDING_CREATE, {"b_escalation": escalation_id,
                                            "b_connector": connector}).first()
        return _outbox(row) if row else None

    @paged
    def replace_payload(self, tx: Connection, action_id: int, payload: dict[str, Any], now: datetime) -> None:
        write(tx, q.UPDATE_ACTION, {"b_id": action_id, "payload": payload, "updated_at": now})

    def due_actions(self, tx: Connection, now: datetime, limit: int = 100,
                    after_id: int = 0) -> list[OutboxRow]:
        rows = tx.execute(q.DUE_ACTIONS, {"b_now": now, "b_after": after_id, "b_limit": limit}).all()
        return [_outbox(row) for row in rows]

    def get_action(self, tx: Connection, action_id: int) -> OutboxRow | None:
        row = tx.execute(q.ACTION, {"b_id": action_id}).first()
        return _outbox(row) if row else None

    @paged
    def finish_action(self, tx: Connection, action_id: int, state: str, now: datetime, *,
                      error: str | None = None, result: Any = None, attempts: int | None = None,
                      next_attempt_at: datetime | None = None) -> None:
        values: dict[str, Any] = dict(state=state, updated_at=now, last_error=redact_text(error))
        if result is not None:
            values["result"] = result
        if attempts is not None:
            values["attempts"] = attempts
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        write(tx, q.UPDATE_ACTION, dict(values, b_id=action_id))

    def actions(self, tx: Connection, *, state: str | None = None,
                escalation_id: str | None = None) -> list[OutboxRow]:
        query = select(t.outbox)
        if state:
            query = query.where(t.outbox.c.state == state)
        if escalation_id:
            query = query.where(t.outbox.c.escalation_id == escalation_id)
        return [_outbox(row) for row in tx.execute(query.order_by(t.outbox.c.id)).all()]

    def replay(self, tx: Connection, action_ids: list[int] | None, now: datetime) -> int:
        """Put dead-lettered actions (all when ``action_ids`` is None) back in the queue."""
        query = update(t.outbox).where(t.outbox.c.state == "dead")
        if action_ids is not None:
            query = query.where(t.outbox.c.id.in_(action_ids))
        result = tx.execute(query.values(state="pending", attempts=0, next_attempt_at=now,
                                         updated_at=now))
        return result.rowcount

    def count_actions(self, tx: Connection) -> dict[str, int]:
        rows = tx.execute(select(t.outbox.c.state, func.count()).group_by(t.outbox.c.state)).all()
        return {state: n for state, n in rows}

    # -- quarantine -----------------------------------------------------------------------------
    def quarantine(self, tx: Connection, *, connector: str, remote_id: str, version: str | None,
                   reason: str, payload: Any, run_id: str, now: datetime) -> bool:
        """Record a record that failed to map; False when that exact version was already there."""
        try:
            with tx.begin_nested():
                tx.execute(insert(t.quarantine).values(
                    connector=connector, remote_id=remote_id, remote_version=version,
                    reason=redact_text(reason), payload=redact(payload), run_id=run_id, created_at=now))
        except IntegrityError:
            return False
        return True

    def quarantined(self, tx: Connection, *, unresolved: bool = True) -> list[dict[str, Any]]:
        query = select(t.quarantine)
        if unresolved:
            query = query.where(t.quarantine.c.resolved_at.is_(None))
        return [dict(r._mapping) for r in tx.execute(query.order_by(t.quarantine.c.id)).all()]

    def resolve_quarantine(self, tx: Connection, connector: str, remote_id: str, now: datetime) -> None:
        tx.execute(update(t.quarantine).where(
            (t.quarantine.c.connector == connector) & (t.quarantine.c.remote_id == remote_id)
            & t.quarantine.c.resolved_at.is_(None)).values(resolved_at=now))

    # -- runs -----------------------------------------------------------------------------------
    def start_run(self, tx: Connection, run_id: str, mode: str, now: datetime) -> None:
        tx.execute(insert(t.runs).values(run_id=run_id, started_at=now, mode=mode, status="running"))

    def finish_run(self, tx: Connection, run_id: str, status: str, stats: dict[str, Any],
                   now: datetime) -> None:
        tx.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(
            finished_at=now, status=status, stats=redact(stats)))


def _stored(row: Any) -> StoredEscalation:
    return StoredEscalation(Escalation.model_validate(row.data), dict(row.field_times or {}))


def _link(row: Any) -> LinkRow:
    return LinkRow(tracker=row.tracker, remote_id=row.remote_id, escalation_id=row.escalation_id,
                   role=row.role, key=row.key, url=row.url, last_version=row.last_version,
                   last_hash=row.last_hash, last_data=row.last_data,
                   seen_comments=list(row.seen_comments or []))


def _outbox(row: Any) -> OutboxRow:
    return OutboxRow(id=row.id, escalation_id=row.escalation_id, connector=row.connector,
                     kind=row.kind, remote_id=row.remote_id, payload=row.payload,
                     dedupe_key=row.dedupe_key, rule=row.rule, state=row.state,
                     attempts=row.attempts, next_attempt_at=row.next_attempt_at,
                     last_error=row.last_error, result=row.result)
