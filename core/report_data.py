"""What the SLA report reads from the store: escalations of a period, their state history and
the management escalation decisions in the audit log.

Each read is one query on an index (escalations by created_at, history by escalation and version,
audit by action and time: EXPLAIN QUERY PLAN is checked in tests/test_report_queries.py), so a
report reads only its period's rows however long the log: escalations are parsed straight from
their JSON text by pydantic, and the history is joined to the period's escalations in the
database instead of being asked for by lists of ids."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.engine import Connection

from core import schema as t
from core.model import Escalation

BATCH = 500
# the answers to management escalation requests (not the review clock or other escalation rules)
ANSWER_RULE = re.compile(r"^escalation\.(level_\d+|refused\..+|top)$")
TOP_LEVEL = 4


def _opened(start: datetime, end: datetime):
    e = t.escalations
    return (e.c.created_at >= start) & (e.c.created_at < end)


def opened_escalations(tx: Connection, start: datetime, end: datetime) -> list[Escalation]:
    """The escalations opened in [start, end), oldest first (validated from their JSON text)."""
    e = t.escalations
    rows = tx.execute(select(cast(e.c.data, Text).label("data")).where(_opened(start, end))
                      .order_by(e.c.created_at, e.c.id)).scalars()
    return [Escalation.model_validate_json(text) for text in rows]


def history_states(tx: Connection, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, str]]]:
    """Per escalation opened in [start, end), (at, state) at each version where the state
    changed, oldest first."""
    h, e = t.history, t.escalations
    query = (select(h.c.escalation_id, h.c.at, h.c.data["state"].as_string().label("state"))
             .join(e, e.c.id == h.c.escalation_id).where(_opened(start, end))
             .order_by(h.c.escalation_id, h.c.version))
    out: dict[str, list[tuple[datetime, str]]] = {}
    for row in tx.execute(query):
        steps = out.setdefault(row.escalation_id, [])
        if not steps or steps[-1][1] != row.state:
            steps.append((row.at, row.state))
    return out


def _parts(rule: str | None) -> list[str]:
    return [part for part in (rule or "").split(",") if ANSWER_RULE.match(part)]


def management_decisions(tx: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Accepted and refused management escalation requests decided in [start, end)."""
    a = t.audit
    query = (select(a.c.seq, a.c.at, a.c.escalation_id, a.c.rule, a.c.result)
             .where(a.c.action.in_(["merged", "policy", "opened"]) & (a.c.at >= start)
                    & (a.c.at < end) & a.c.rule.like("%escalation.%"))
             .order_by(a.c.seq))
    found = []
    for row in tx.execute(query):
        for part in _parts(row.rule):
            found.append({"at": row.at, "escalation_id": row.escalation_id, "rule": part,
                          "version": _version(row.result)})
    levels = _levels(tx, [(f["escalation_id"], f["version"]) for f in found
                          if ".refused." in f["rule"] and f["version"]])
    return [_decision(item, levels) for item in found]


def _version(result: str | None) -> int | None:
    text = (result or "").removeprefix("version ")
    return int(text) if text.isdigit() else None


def _levels(tx: Connection, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The escalation level at each (escalation, version): searched on the history's primary key
    (ids IN and versions IN, exact pairs kept here; a tuple IN scanned the whole history)."""
    h = t.history
    wanted, out = set(keys), {}
    for start in range(0, len(keys), BATCH):
        part = keys[start:start + BATCH]
        query = select(h.c.escalation_id, h.c.version,
                       h.c.data["escalation_level"].as_integer().label("level")).where(
            h.c.escalation_id.in_({k[0] for k in part}) & h.c.version.in_({k[1] for k in part}))
        out.update({(r.escalation_id, r.version): r.level or 0 for r in tx.execute(query)
                    if (r.escalation_id, r.version) in wanted})
    return out


def _decision(item: dict[str, Any], levels: dict[tuple[str, int], int]) -> dict[str, Any]:
    rule = item["rule"].removeprefix("escalation.")
    if rule == "top":  # asked again at level 4: answered automatically (issue 14)
        return dict(item, rule="top", outcome="refused", level=TOP_LEVEL)
    if rule.startswith("refused."):
        level = levels.get((item["escalation_id"], item["version"]), 0) + 1
        return dict(item, rule=rule.removeprefix("refused."), outcome="refused", level=level)
    return dict(item, outcome="accepted", level=int(rule.removeprefix("level_") or 0))
