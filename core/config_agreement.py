"""Several daemons on one store run one configuration: that of the daemon started last.

Two daemons with different policy or mapping files would decide the same escalation two ways
(writes flapping between them) and, through the decision schedule's policy fingerprint
(core/due.py), make every open escalation due on every cycle. Rules:
- each worker announces the fingerprint of its rules (policy, mappings, trackers; never a
  secret) in a lease row ``config:<worker id>:<fingerprint>``, renewed with its other leases;
- the configuration in force is that of the live worker that started last;
- a worker whose fingerprint differs steps back: it gives up its pull leases and claims, runs no
  cycle and no webhook pass, is not ready, and logs an error naming the daemon in force; it
  works again when that daemon is gone, or once restarted with the same files;
- so a rolling restart works: each daemon started with the new files takes over from the old.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core.worker_schema import leases

CONFIG = "config:"


@dataclass(frozen=True)
class InForce:
    worker: str
    fingerprint: str


def rules_fingerprint(policy_fingerprint: str, mappings: Mapping[str, Any]) -> str:
    """One hash of what decides and maps: the policy's fingerprint, each tracker's mapping."""
    parts = {"policy": policy_fingerprint,
             "mappings": {name: _dump(mapping) for name, mapping in sorted(mappings.items())}}
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def engine_rules(engine: Any) -> str:
    """The fingerprint of an engine's rules."""
    from core.due import fingerprint
    return rules_fingerprint(fingerprint(engine.policy, engine.settings.reevaluate_seconds),
                             engine.mappings)


def announce_name(worker: str, fingerprint: str) -> str:
    return f"{CONFIG}{worker}:{fingerprint}"


def in_force(tx: Connection, now: datetime) -> InForce | None:
    """The configuration of the live worker that started last (None: nobody announced one)."""
    row = tx.execute(select(leases.c.holder, leases.c.name)
                     .where(leases.c.name.like(CONFIG + "%") & (leases.c.expires_at > now))
                     .order_by(leases.c.acquired_at.desc(), leases.c.name.desc()).limit(1)).first()
    if row is None:
        return None
    return InForce(worker=row.holder, fingerprint=row.name.rsplit(":", 1)[1])


def agreeing(tx: Connection, fingerprint: str, now: datetime) -> list[str]:
    """The live workers that announced ``fingerprint``."""
    rows = tx.execute(select(leases.c.holder).where(
        leases.c.name.like(CONFIG + "%:" + fingerprint) & (leases.c.expires_at > now)))
    return sorted({row.holder for row in rows})


def _dump(mapping: Any) -> Any:
    dump = getattr(mapping, "model_dump", None)
    return dump(mode="json") if callable(dump) else repr(mapping)
