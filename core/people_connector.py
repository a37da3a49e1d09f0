"""A connector seen through its user directory (core/people.py).

Rules:
- Writing (create, update): each person field of the mapping (``FieldMap.person``) holding an
  address is written as the tracker's user; a person the tracker does not know, or knows as
  deactivated, is left out of the write and an internal note naming them is queued once per
  record and person (outbox key ``people:<escalation>:<tracker>:<record>:<address>``).
- Notifying (add_comment ``notify``): addresses become the tracker's users; unknown ones are
  left out (the comment is still written) and named in a note the same way.
- Reading: a person field holding a tracker user id (a Jira accountId whose address is hidden)
  reads as the address the override table or the cache gives it, so the escalation holds
  addresses whichever tracker it came from.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from core.connector import TIERSYNC_COMMENT_MARK, Page, RemoteRecord, Written, replaced
from core.people import PeopleDirectory, is_address, missing_text
from core.planner import parse_idempotency_key


class PeopleConnector:
    def __init__(self, inner: Any, mapping: Any, store: Any, clock: Any):
        self.inner = inner
        self.mapping = mapping
        self.store = store
        self.clock = clock
        user_field = getattr(inner, "is_user_field", lambda path: False)
        self.paths = mapping.person_paths(user_field) if mapping is not None else set()
        self.directory = PeopleDirectory(inner.name, inner, store, clock=clock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    # -- reading ----------------------------------------------------------------------------
    def _read(self, record: RemoteRecord | None) -> RemoteRecord | None:
        if record is None or not self.paths:
            return record
        data = dict(record.data)
        for path in self.paths & set(data):
            data[path] = self.directory.address_of(data[path])
        return replaced(record, data=data)

    def fetch_changes(self, cursor: str | None) -> Iterator[Page]:
        for page in self.inner.fetch_changes(cursor):
            yield dataclasses.replace(page, records=[self._read(r) for r in page.records])

    def get(self, remote_id: str) -> RemoteRecord:
        return self._read(self.inner.get(remote_id))

    def fetch_records(self, remote_ids: list[str]) -> list[RemoteRecord]:
        return [self._read(r) for r in self.inner.fetch_records(remote_ids)]

    def load_details(self, records: list[RemoteRecord]) -> list[RemoteRecord]:
        return [self._read(r) for r in self.inner.load_details(records)]

    def find_by_idempotency_key(self, idempotency_key: str) -> RemoteRecord | None:
        return self._read(self.inner.find_by_idempotency_key(idempotency_key))

    # -- writing ----------------------------------------------------------------------------
    def _resolve(self, fields: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        out, missing = dict(fields), []
        for path in self.paths & set(fields):
            value = fields[path]
            if not is_address(value):
                continue
            found = self.directory.lookup(str(value))
            if found.found:
                out[path] = found.ref
            else:
                out.pop(path)
                missing.append((path, found))
        return out, missing

    def create(self, fields: dict[str, Any], **kwargs: Any) -> RemoteRecord:
        resolved, missing = self._resolve(fields)
        record = self.inner.create(resolved, **kwargs)
        parsed = parse_idempotency_key(kwargs.get("idempotency_key"))
        self._note(parsed[0] if parsed else None, record.id, missing)
        return self._read(record)

    def update(self, remote_id: str, fields: dict[str, Any], **kwargs: Any) -> RemoteRecord:
        resolved, missing = self._resolve(fields)
        record = self.inner.update(remote_id, resolved, **kwargs) if resolved or not missing \
            else self.inner.get(remote_id)
        self._note(None, remote_id, missing)
        return self._read(record)

    def add_comment(self, remote_id: str, body: str, *, public: bool,
                    notify: tuple[str, ...] = ()) -> str:
        people, missing = self._notified(notify)
        extra = {"notify": tuple(people)} if people else {}
        comment_id = self.inner.add_comment(remote_id, body, public=public, **extra)
        if not _about_people(body):
            self._note(None, remote_id, missing)
        return comment_id

    def write(self, remote_id: str, fields: dict[str, Any], comment: Any, *,
              expected_version: str) -> Written:
        """``Connector.write`` with people resolved as ``update`` and ``add_comment`` do."""
        resolved, missing = self._resolve(fields)
        if comment is not None:
            people, unknown = self._notified(comment.notify)
            comment = dataclasses.replace(comment, notify=tuple(people))
            missing += [] if _about_people(comment.body) else unknown
        written = self.inner.write(remote_id, resolved, comment, expected_version=expected_version)
        self._note(None, remote_id, missing)
        return dataclasses.replace(written, record=self._read(written.record))

    def _notified(self, notify: tuple[str, ...]) -> tuple[list[str], list[tuple[str, Any]]]:
        """The tracker's references of the people to notify, and those not found."""
        people, missing = [], []
        for who in notify:
            found = self.directory.lookup(who) if is_address(who) else None
            if found is None or found.found:
                ref = found.ref if found else who
                people.append(ref) if ref not in people else None
            else:
                missing.append(("notification", found))
        return people, missing

    def _note(self, escalation_id: str | None, remote_id: str,
              missing: list[tuple[str, Any]]) -> None:
        """Queue one internal note per person not found (never twice for one record)."""
        if not missing:
            return
        with self.store.transaction() as tx:
            if escalation_id is None:
                link = self.store.links_for(tx, self.inner.name, [remote_id]).get(remote_id)
                escalation_id = link.escalation_id if link else None
            if escalation_id is None:
                return
            for path, found in missing:
                key = f"people:{escalation_id}:{self.inner.name}:{remote_id}:{found.address}"
                body = f"{TIERSYNC_COMMENT_MARK} {missing_text(self.inner.name, path, found)}"
                self.store.enqueue(tx, escalation_id=escalation_id, connector=self.inner.name,
                                   kind="comment", payload={"body": body, "public": False},
                                   now=self.clock(), dedupe_key=key, rule="people.not_found")


def _about_people(body: str) -> bool:
    """A note about people not found (never noted again for the people it names)."""
    return body.lstrip().startswith(f"{TIERSYNC_COMMENT_MARK} tiersync could not")


def with_people(connectors: dict[str, Any], mappings: dict[str, Any], store: Any,
                clock: Any) -> dict[str, Any]:
    return {name: c if isinstance(c, PeopleConnector) else
            PeopleConnector(c, mappings.get(name), store, clock) for name, c in connectors.items()}
