"""An in-memory tracker implementing the connector interface.

Used by the engine's unit tests and by anyone trying a mapping without a tracker. Records are
flat native views; every write bumps an integer version, and ``changed`` keeps the order of
changes so that ``fetch_changes`` can page through them with a cursor.
"""
from __future__ import annotations

import bisect
import itertools
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Iterator

from core.connector import (Capabilities, Connector, OriginRef, Page, RemoteComment, RemoteRecord,
                            TrackerConfig)
from connectors.registry import register
from core.errors import Conflict, NotFound


class MemoryConfig(TrackerConfig):
    kind: str = "memory"
    base_url: str = "memory://"
    page_size: int = 50
    record_calls: bool = True  # keep ``calls`` (tests assert on them; a benchmark need not)


@register
class MemoryConnector(Connector):
    kind: ClassVar[str] = "memory"
    config_model: ClassVar[type[TrackerConfig]] = MemoryConfig

    def __init__(self, name: str, config: MemoryConfig | None = None):
        super().__init__(name, config or MemoryConfig(mapping=name))
        self.records: dict[str, RemoteRecord] = {}
        self.markers: dict[str, str] = {}  # idempotency key -> id
        self.seq = 0  # change sequence number; the cursor is the last one seen
        self.changed: dict[str, int] = {}  # id -> sequence of its last change
        self._log: list[tuple[int, str]] = []  # (sequence, id) of every change, in order
        self.calls: list[tuple[str, str]] = []  # (operation, id) for assertions
        self.clock = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- helpers for tests ----------------------------------------------------------------------
    def tick(self, seconds: int = 60) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def put(self, data: dict[str, Any], *, remote_id: str | None = None,
            comments: list[RemoteComment] | None = None, marker: str | None = None) -> RemoteRecord:
        """Create or replace a record as a human would in the tracker's UI."""
        with self._lock:
            remote_id = remote_id or str(next(self._ids))
            old = self.records.get(remote_id)
            version = str(int(old.version) + 1) if old else "1"
            record = RemoteRecord(
                tracker=self.name, id=remote_id, version=version, updated_at=self.tick(),
                data=dict(data), url=f"memory://{self.name}/{remote_id}",
                comments=tuple(comments if comments is not None else (old.comments if old else ())),
                idempotency_key=marker or (old.idempotency_key if old else None))
            return self._store(record)

    def edit(self, remote_id: str, **changes: Any) -> RemoteRecord:
        data = dict(self.records[remote_id].data)
        data.update({k.replace("__", "."): v for k, v in changes.items()})
        return self.put(data, remote_id=remote_id)

    def _store(self, record: RemoteRecord) -> RemoteRecord:
        self.records[record.id] = record
        self.seq += 1
        self.changed[record.id] = self.seq
        self._log.append((self.seq, record.id))
        if record.idempotency_key:
            self.markers[record.idempotency_key] = record.id
        return record

    def _called(self, call: tuple) -> None:
        if self.config.record_calls:
            self.calls.append(call)

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in ("create", "update", "comment")]

    # -- the interface -------------------------------------------------------------------------
    def fetch_changes(self, cursor: str | None) -> Iterator[Page]:
        after = int(cursor or 0)
        while True:
            with self._lock:
                batch = self._changed_after(after)
                records = [self.records[rid] for _, rid in batch]
            if not batch:
                return
            after = batch[-1][0]
            self._called(("fetch", str(after)))
            yield Page(records=records, cursor=str(after))

    def _changed_after(self, after: int) -> list[tuple[int, str]]:
        """The next page: records by the sequence of their last change, after ``after``
        (the change log is read from ``after`` on, skipping changes superseded since)."""
        batch = []
        for index in range(bisect.bisect_right(self._log, (after, "\uffff")), len(self._log)):
            seq, rid = self._log[index]
            if self.changed[rid] == seq:
                batch.append((seq, rid))
                if len(batch) == self.config.page_size:
                    break
        return batch

    def get(self, remote_id: str) -> RemoteRecord:
        self._called(("get", remote_id))
        try:
            return self.records[remote_id]
        except KeyError:
            raise NotFound(f"record {remote_id} not found", tracker=self.name) from None

    def create(self, fields: dict[str, Any], *, idempotency_key: str,
               origin: OriginRef | None = None) -> RemoteRecord:
        data = dict(fields)
        if origin is not None:
            data["links"] = [origin.url or f"{origin.tracker}:{origin.remote_id}"]
        record = self.put(data, marker=idempotency_key)
        self._called(("create", record.id))
        return record

    def find_by_idempotency_key(self, idempotency_key: str) -> RemoteRecord | None:
        self._called(("find", idempotency_key))
        remote_id = self.markers.get(idempotency_key)
        return self.records[remote_id] if remote_id else None

    def find_by_idempotency_keys(self, idempotency_keys: list[str]) -> dict[str, RemoteRecord]:
        """Several keys in one call, as a tracker with a bulk lookup answers them."""
        self._called(("find_many", tuple(idempotency_keys)))
        return {key: self.records[self.markers[key]] for key in idempotency_keys if key in self.markers}

    def update(self, remote_id: str, fields: dict[str, Any], *,
               expected_version: str | None) -> RemoteRecord:
        current = self.get(remote_id)
        if expected_version is not None and expected_version != current.version:
            raise Conflict(f"record {remote_id} is at version {current.version}, "
                           f"not {expected_version}", tracker=self.name, status=409)
        data = dict(current.data)
        data.update(fields)
        record = self.put(data, remote_id=remote_id)
        self._called(("update", remote_id))
        return record

    def add_comment(self, remote_id: str, body: str, *, public: bool,
                    notify: tuple[str, ...] = ()) -> str:
        current = self.get(remote_id)
        comment = RemoteComment(id=f"{remote_id}-c{len(current.comments) + 1}", body=body,
                                public=public, created_at=self.tick(), author="tiersync")
        with self._lock:
            self._store(replace(current, comments=current.comments + (comment,),
                                version=str(int(current.version) + 1), updated_at=self.clock))
        self._called(("comment", remote_id))
        if notify:
            self._called(("notify", remote_id, tuple(notify)))
        return comment.id

    def capabilities(self) -> Capabilities:
        return Capabilities(max_page_size=self.config.page_size, version_order="counter")
