"""The audit log: one entry per decision, append-only and tamper-evident.

Each entry records the run, the time, the tracker record and its version, the mapping and rule
applied, the fields before and after, the action and its result. Entries are chained: each
carries the SHA-256 of the previous entry's hash and its own canonical content, so that
``verify`` finds any edited, removed or reordered entry. Text is redacted before it is stored.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, TextIO

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from core import schema as t
from core.redact import redact
from core.store_values import compact

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


def _chain(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


class AuditLog:
    def append(self, tx: Connection, entry: AuditEntry) -> str:
        row = {
            "run_id": entry.run_id, "at": entry.at.astimezone(timezone.utc), "escalation_id": entry.escalation_id,
            "tracker": entry.tracker, "remote_id": entry.remote_id,
            "remote_version": entry.remote_version, "mapping": entry.mapping, "rule": entry.rule,
            "action": entry.action, "before": compact(redact(entry.before)),
            "after": compact(redact(entry.after)), "result": redact(entry.result),
        }
        prev = tx.execute(select(t.audit.c.hash).order_by(t.audit.c.seq.desc()).limit(1)).scalar()
        prev = prev or GENESIS
        digest = _chain(prev, _content(row))
        tx.execute(insert(t.audit).values(prev_hash=prev, hash=digest, **row))
        return digest

    def query(self, tx: Connection, *, escalation_id: str | None = None, tracker: str | None = None,
              remote_id: str | None = None, since: datetime | None = None,
              run_id: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        query = select(t.audit)
        if escalation_id:
            query = query.where(t.audit.c.escalation_id == escalation_id)
        if tracker:
            query = query.where(t.audit.c.tracker == tracker)
        if remote_id:
            query = query.where(t.audit.c.remote_id == remote_id)
        if since:
            query = query.where(t.audit.c.at >= since)
        if run_id:
            query = query.where(t.audit.c.run_id == run_id)
        query = query.order_by(t.audit.c.seq)
        if limit:
            query = query.limit(limit)
        for row in tx.execute(query):
            yield dict(row._mapping)

    def verify(self, tx: Connection) -> list[str]:
        """Problems found walking the chain (empty when intact)."""
        problems = []
        prev = GENESIS
        for row in tx.execute(select(t.audit).order_by(t.audit.c.seq)):
            data = dict(row._mapping)
            if data["prev_hash"] != prev:
                problems.append(f"audit entry {data['seq']}: previous-hash link broken "
                                "(an entry before it was removed or reordered)")
            if _chain(data["prev_hash"], _content(data)) != data["hash"]:
                problems.append(f"audit entry {data['seq']}: content does not match its hash "
                                "(the entry was edited)")
            prev = data["hash"]
        return problems


def write_jsonl(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        row = dict(row)
        if isinstance(row.get("at"), datetime):
            row["at"] = row["at"].isoformat()
        out.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        count += 1
    return count
