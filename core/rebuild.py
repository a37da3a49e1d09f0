"""`tiersync rebuild`: escalations and links reconstructed from the trackers, creating nothing.

Rules:
- every configured tracker is read from ``since`` (default: its whole history) and each
  record is reconciled as a pull would: a record that opens an escalation opens it under the
  id derived from it (``escalation_id_for``), the id its mirrors' markers name
  (``tiersync:<escalation>:<tracker>``: Zendesk ``external_id``, Jira property/label, Azure
  DevOps tag or marker field);
- a record carrying the marker of an escalation is adopted as that escalation's mirror, and
  its current values are merged into the escalation by the newest change (it is never opened
  as an escalation of its own); mirrors read before their origin are taken again in a second
  pass, once every origin is in;
- a mirror whose escalation has no origin in any tracker is reported as an orphan (link it
  with `tiersync link`);
- nothing is sent to any tracker: updates, comments and creates the rebuilt state needs are
  queued for the next run, which sends only what differs (comments already on a record are
  recognised and not posted again, a create finds its mirror by the marker).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from sqlalchemy import func, select

from core import schema as t
from core.backfill import ScanSummary, scan
from core.planner import parse_idempotency_key


@dataclass
class RebuildResult:
    scans: list[ScanSummary] = field(default_factory=list)
    escalations: int = 0
    links: int = 0
    orphans: list[str] = field(default_factory=list)  # "tracker:id (escalation)"
    queued: dict[str, int] = field(default_factory=dict)  # action kind -> pending count


def rebuild(engine, report, *, since: datetime | None = None,
            on_page: Callable[[str, int], None] = lambda _n, _c: None) -> RebuildResult:
    engine.planner.run_id = report.run_id
    result = RebuildResult()
    waiting: dict[tuple[str, str], object] = {}

    def remember_unknown_mirrors(record) -> bool:
        parsed = parse_idempotency_key(record.idempotency_key)
        if parsed and parsed[1] == record.tracker and not _known(engine, parsed[0]):
            waiting[(record.tracker, record.id)] = record
        return True

    for name in engine.connectors:
        result.scans.append(scan(engine, name, since, report, stream=None, on_page=on_page,
                                 keep=remember_unknown_mirrors))
    for (name, _rid), record in waiting.items():  # the second pass: their origins are in now
        with engine.store.transaction() as tx:
            engine.process_records(tx, name, [record], report)
    _count(engine, result, waiting)
    return result


def _known(engine, escalation_id: str) -> bool:
    with engine.store.transaction() as tx:
        return engine.store.get_escalation(tx, escalation_id) is not None


def _count(engine, result: RebuildResult, waiting: dict) -> None:
    with engine.store.transaction() as tx:
        result.escalations = tx.execute(select(func.count()).select_from(t.escalations)).scalar() or 0
        result.links = tx.execute(select(func.count()).select_from(t.links)).scalar() or 0
        rows = tx.execute(select(t.outbox.c.kind, func.count()).where(t.outbox.c.state == "pending")
                          .group_by(t.outbox.c.kind)).all()
        result.queued = {kind: n for kind, n in rows}
        for (name, rid), record in waiting.items():
            if not engine.store.links_for(tx, name, [rid]):
                parsed = parse_idempotency_key(record.idempotency_key)
                result.orphans.append(f"{name}:{record.key or rid} (escalation {parsed[0]})")
