"""Redaction where tracker data enters and leaves tiersync, per mapping (``redact_secrets``).

Rules:
- Every record a connector returns (pulled pages, reads, the replies to creates and updates) is
  redacted before the engine sees it, unless its tracker's mapping says ``redact_secrets:
  false``. Escalation data, history, link snapshots, outbox payloads, quarantine and audit are
  all derived from those records, so the store never holds a credential, and echo and change
  detection compare redacted text with redacted text (redaction is idempotent).
- Text tiersync copies into a tracker (fields, comment copies, notes) is redacted unless that
  tracker's mapping says ``redact_secrets: false``; this matters only when the text comes from a
  tracker whose own switch is off.
- The origin keeps its text: tiersync never writes a value back only because redaction changed
  it (the snapshot it compares against is redacted the same way).
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Any, Iterator

from core.connector import Connector, Page, RemoteRecord, replaced
from core.model import Escalation
from core.model_json import as_json
from core import redact as _redact
from core.redact import redact, redact_text, screens_clean


def redact_record(record: RemoteRecord) -> RemoteRecord:
    """``record`` with every string of its native view and every comment body redacted."""
    comments = tuple(_redacted_comment(c) for c in record.comments)
    return replaced(record, data=redact(record.data), comments=comments)


def _redacted_comment(comment: Any) -> Any:
    body = redact_text(comment.body)
    return comment if body == comment.body else dataclasses.replace(comment, body=body)


def redact_escalation(escalation: Escalation) -> Escalation:
    """The escalation as tiersync may copy it into a tracker with redaction on. A plan asks
    once per linked tracker for the same version: the last answer is remembered per thread
    (for that very object, while no secret was registered since)."""
    last = getattr(_LAST, "pair", None)
    secrets = len(_redact._SECRETS)
    if last is not None and last[0] is escalation and last[1] == secrets:
        return last[2]
    data = as_json(escalation)
    if screens_clean(data):  # most escalations: one screen, nothing copied
        out = escalation
    else:  # redacted once: an equal result is the escalation as it is
        cleaned = redact(data)
        out = escalation if cleaned == data else Escalation.model_validate(cleaned)
    _LAST.pair = (escalation, secrets, out)
    return out


_LAST = threading.local()


class RedactingConnector:
    """Wraps a connector so that every record it returns is redacted; the rest passes through."""

    def __init__(self, inner: Connector):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def fetch_changes(self, cursor: str | None) -> Iterator[Page]:
        for page in self.inner.fetch_changes(cursor):
            yield dataclasses.replace(page, records=[redact_record(r) for r in page.records])

    def get(self, remote_id: str) -> RemoteRecord:
        return redact_record(self.inner.get(remote_id))

    def fetch_records(self, remote_ids: list[str]) -> list[RemoteRecord]:
        return [redact_record(r) for r in self.inner.fetch_records(remote_ids)]

    def create(self, fields: dict[str, Any], **kwargs: Any) -> RemoteRecord:
        return redact_record(self.inner.create(fields, **kwargs))

    def update(self, remote_id: str, fields: dict[str, Any], **kwargs: Any) -> RemoteRecord:
        return redact_record(self.inner.update(remote_id, fields, **kwargs))

    def load_details(self, records: list[RemoteRecord]) -> list[RemoteRecord]:
        return [redact_record(r) for r in self.inner.load_details(records)]

    def write(self, remote_id: str, fields: dict[str, Any], comment: Any, *,
              expected_version: str) -> Any:
        written = self.inner.write(remote_id, fields, comment, expected_version=expected_version)
        return dataclasses.replace(written, record=redact_record(written.record))

    def find_by_idempotency_key(self, idempotency_key: str) -> RemoteRecord | None:
        record = self.inner.find_by_idempotency_key(idempotency_key)
        return redact_record(record) if record is not None else None

    def find_by_idempotency_keys(self, idempotency_keys: list[str]) -> dict[str, RemoteRecord]:
        found = self.inner.find_by_idempotency_keys(idempotency_keys)
        return {key: redact_record(record) for key, record in found.items()}


def redacting(connectors: dict[str, Connector], mappings: dict[str, Any]) -> dict[str, Any]:
    """Each connector wrapped when its mapping redacts (the default)."""
    return {name: RedactingConnector(c) if _redacts(mappings.get(name)) and
            not isinstance(c, RedactingConnector) else c for name, c in connectors.items()}


def _redacts(mapping: Any) -> bool:
    return getattr(mapping, "redact_secrets", True)
