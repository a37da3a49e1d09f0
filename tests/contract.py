"""The contract every connector must pass.

A tracker's test module subclasses :class:`ConnectorContract` and provides three fixtures:

- ``connector``: a connector talking to a live tracker (the local simulator for real ones),
- ``sample_fields``: native fields for a create, readable back with ``get``,
- ``human_edit``: a callable ``(remote_id, fields) -> None`` that changes a record the way a
  person in the tracker's UI would (behind the connector's back, e.g. through the simulator).
"""
from __future__ import annotations

import uuid

import pytest

from core.connector import Capabilities, Connector, OriginRef, RemoteRecord
from core.errors import Conflict, NotFound


def _all_records(connector: Connector, cursor: str | None) -> tuple[list[RemoteRecord], str | None]:
    records: list[RemoteRecord] = []
    for page in connector.fetch_changes(cursor):
        records.extend(page.records)
        cursor = page.cursor if page.cursor is not None else cursor
    return records, cursor


def _key() -> str:
    return f"tiersync:contract-{uuid.uuid4().hex[:8]}"


class ConnectorContract:
    def test_create_then_find_by_idempotency_key(self, connector, sample_fields):
        key = _key()
        created = connector.create(dict(sample_fields), idempotency_key=key,
                                   origin=OriginRef("origin-tracker", "77", "http://example.test/77"))
        found = connector.find_by_idempotency_key(key)
        assert found is not None and found.id == created.id
        assert found.idempotency_key == key
        assert connector.find_by_idempotency_key(_key()) is None

    def test_get_reads_back_what_was_created(self, connector, sample_fields):
        created = connector.create(dict(sample_fields), idempotency_key=_key())
        record = connector.get(created.id)
        assert record.tracker == connector.name
        assert record.updated_at.tzinfo is not None
        for path, value in sample_fields.items():
            assert record.data.get(path) == value, path

    def test_get_unknown_record_raises_not_found(self, connector):
        with pytest.raises(NotFound):
            connector.get("987654321")

    def test_update_with_current_version_then_stale_version_conflicts(self, connector, sample_fields, human_edit):
        created = connector.create(dict(sample_fields), idempotency_key=_key())
        path, value = next(iter(sample_fields.items()))
        updated = connector.update(created.id, {path: value}, expected_version=created.version)
        human_edit(created.id, {path: value})
        with pytest.raises(Conflict):
            connector.update(created.id, {path: value}, expected_version=updated.version)

    def test_comments_public_and_internal(self, connector, sample_fields):
        created = connector.create(dict(sample_fields), idempotency_key=_key())
        connector.add_comment(created.id, "internal note from the contract", public=False)
        caps = connector.capabilities()
        assert isinstance(caps, Capabilities)
        if caps.public_comments:
            connector.add_comment(created.id, "public reply from the contract", public=True)
        comments = {c.body: c for c in connector.get(created.id).comments}
        assert comments["internal note from the contract"].public is False
        if caps.public_comments:
            assert comments["public reply from the contract"].public is True

    @pytest.fixture
    def settle(self):
        """Waits until a change shows in the tracker's feed (a realistic simulator's hold-back or
        index lag); override where the tracker has one."""
        return lambda: None

    def test_fetch_changes_resumes_from_cursor_without_repeats(self, connector, sample_fields,
                                                                 human_edit, settle):
        first = connector.create(dict(sample_fields), idempotency_key=_key())
        settle()
        seen, cursor = _all_records(connector, None)
        assert first.id in {r.id for r in seen}
        again, cursor = _all_records(connector, cursor)
        seen_versions = {(r.id, r.version) for r in seen}
        assert not [r for r in again if (r.id, r.version) in seen_versions]
        path, value = next(iter(sample_fields.items()))
        human_edit(first.id, {path: value})
        settle()
        later, _ = _all_records(connector, cursor)
        assert first.id in {r.id for r in later}
