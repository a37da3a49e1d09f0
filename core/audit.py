"""The audit log: one entry per decision, append-only and tamper-evident.

Each entry records the run, the time, the tracker record and its version, the mapping and rule
applied, the fields before and after, the action and its result. Entries are chained: each
carries the SHA-256 of the previous entry's hash and its own canonical content (an HMAC-SHA256
with ``TIERSYNC_AUDIT_KEY`` when a key is set), so that ``verify`` finds any edited, removed or
reordered entry. The chain's head (entries appended, last hash) is recorded in ``audit_chain`` in
the same transaction as each entry, so a cut log is found too (core/audit_chain.py verifies).
A transaction's entries are hashed as they are appended and inserted in one batch at its commit
(core/audit_batch.py).
Text is redacted before it is stored.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, TextIO

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core import audit_batch, schema as t
from core.audit_schema import audit_chain
from core.errors import TiersyncError
from core.redact import redact, redact_shortened, register_secret
from core.store_values import LIMIT, compact

GENESIS = "0" * 64


@dataclass
class AuditEntry:
    run_id: str
    at: datetime
    action: str
    escalation_id: str | None = None
    tracker: str | None = None
    remote_id: str | None = None
    remote_version: str | None = None
    mapping: str | None = None
    rule: str | None = None
    before: Any = None
    after: Any = None
    result: str | None = None


def _content(row: dict[str, Any]) -> str:
    fields = {k: row.get(k) for k in ("run_id", "at", "escalation_id", "tracker", "remote_id",
                                      "remote_version", "mapping", "rule", "action", "before",
                                      "after", "result")}
    at = fields["at"]
    fields["at"] = at.isoformat() if isinstance(at, datetime) else at
    return json.dumps(fields, sort_keys=True, default=str, ensure_ascii=False)


class AuditKeyMissing(TiersyncError):
    """The chain is keyed but no key is set: appending unkeyed entries would break it."""


KEY_VARIABLE = "TIERSYNC_AUDIT_KEY"


def audit_key() -> bytes | None:
    """The HMAC key from $TIERSYNC_AUDIT_KEY or the file named by $TIERSYNC_AUDIT_KEY_FILE."""
    value = os.environ.get(KEY_VARIABLE)
    if value is None and os.environ.get(KEY_VARIABLE + "_FILE"):
        value = Path(os.environ[KEY_VARIABLE + "_FILE"]).read_text(encoding="utf-8").strip()
    if not value:
        return None
    register_secret(value)
    return value.encode("utf-8")


def _chain(prev_hash: str, content: str, key: bytes | None = None) -> str:
    data = (prev_hash + content).encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def entry_hash(row: dict[str, Any], key: bytes | None = None) -> str:
    """The hash an entry must carry: over its previous hash and canonical content."""
    return _chain(row["prev_hash"], _content(row), key)


class AuditLog:
    def __init__(self, key: bytes | None | str = "env"):
        self.key = audit_key() if key == "env" else key

    def append(self, tx: Connection, entry: AuditEntry) -> str:
        row = {
            "run_id": entry.run_id, "at": entry.at.astimezone(timezone.utc), "escalation_id": entry.escalation_id,
            "tracker": entry.tracker, "remote_id": entry.remote_id,
            "remote_version": entry.remote_version, "mapping": entry.mapping, "rule": entry.rule,
            "action": entry.action, "before": redact_shortened(entry.before, LIMIT, compact),
            "after": redact_shortened(entry.after, LIMIT, compact), "result": redact(entry.result),
        }
        batch = audit_batch.pending(tx)  # inserted with the others at the commit
        self._refuse_unkeyed(batch.keyed_from)
        digest = _chain(batch.head, _content(row), self.key)
        batch.add(dict(row, prev_hash=batch.head, hash=digest), digest, self.key is not None)
        return digest

    def check_writable(self, tx: Connection) -> None:
        """AuditKeyMissing when entries written now would break a keyed chain."""
        batch = audit_batch.peek(tx)
        keyed_from = batch.keyed_from if batch is not None else None
        self._refuse_unkeyed(keyed_from or tx.execute(select(audit_chain.c.keyed_from)).scalar())

    def _refuse_unkeyed(self, keyed_from: int | None) -> None:
        if keyed_from is not None and self.key is None:
            since = "this transaction" if keyed_from == -1 else f"entry {keyed_from}"
            raise AuditKeyMissing(f"the audit chain is keyed since {since}: set "
                                  f"{KEY_VARIABLE} (or {KEY_VARIABLE}_FILE) to write to it")

    def query(self, tx: Connection, *, escalation_id: str | None = None, tracker: str | None = None,
              remote_id: str | None = None, since: datetime | None = None,
              until: datetime | None = None, run_id: str | None = None, action: str | None = None,
              limit: int | None = None, newest_first: bool = False,
              max_seq: int | None = None) -> Iterator[dict[str, Any]]:
        """Entries matching every filter given, streamed in chain order (or newest first).

        Each filter has an index (record, escalation, run, time, action), so a filtered query
        reads only its own entries, however long the log."""
        audit_batch.flush(tx)
        query = select(t.audit)
        for column, value in (("escalation_id", escalation_id), ("tracker", tracker),
                              ("remote_id", remote_id), ("run_id", run_id), ("action", action)):
            if value:
                query = query.where(t.audit.c[column] == value)
        if since:
            query = query.where(t.audit.c.at >= since)
        if until:
            query = query.where(t.audit.c.at < until)
        if max_seq is not None:
            query = query.where(t.audit.c.seq <= max_seq)
        query = query.order_by(t.audit.c.seq.desc() if newest_first else t.audit.c.seq)
        if limit:
            query = query.limit(limit)
        for row in tx.execute(query.execution_options(yield_per=1000)):
            yield dict(row._mapping)


def write_jsonl(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        row = dict(row)
        if isinstance(row.get("at"), datetime):
            row["at"] = row["at"].isoformat()
        out.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        count += 1
    return count
