"""What the SLA report reads from the store: escalations of a period, their state history and
the management escalation decisions in the audit log. Each read uses an index (created_at,
history by escalation, audit by action and time), so a report over a long log stays fast."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.engine import Connection

from core import schema as t
from core.model import Escalation

BATCH = 500
# the answers to management escalation requests (not the review clock or other escalation rules)
ANSWER_RULE = re.compile(r"^escalation\.(level_\d+|refused\..+|top)$")
TOP_LEVEL = 4


def opened_escalations(tx: Connection, start: datetime, end: datetime) -> list[Escalation]:
    rows = tx.execute(select(t.escalations.c.data).where(
        (t.escalations.c.created_at >= start) & (t.escalations.c.created_at < end))
        .order_by(t.escalations.c.created_at, t.escalations.c.id))
    return [Escalation.model_validate(row.data) for row in rows]


def history_states(tx: Connection, ids: list[str]) -> dict[str, list[tuple[datetime, str]]]:
    """Per escalation, (at, state) at each version where the state changed, oldest first."""
    h = t.history
    out: dict[str, list[tuple[datetime, str]]] = {}
    for start in range(0, len(ids), BATCH):
        query = (select(h.c.escalation_id, h.c.at, h.c.data["state"].as_string().label("state"))
                 .where(h.c.escalation_id.in_(ids[start:start + BATCH]))
                 .order_by(h.c.escalation_id, h.c.version))
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
    h = t.history
    out = {}
    for start in range(0, len(keys), BATCH):
        query = select(h.c.escalation_id, h.c.version,
                       h.c.data["escalation_level"].as_integer().label("level")).where(
            tuple_(h.c.escalation_id, h.c.version).in_(keys[start:start + BATCH]))
        out.update({(r.escalation_id, r.version): r.level or 0 for r in tx.execute(query)})
    return out


def _decision(item: dict[str, Any], levels: dict[tuple[str, int], int]) -> dict[str, Any]:
    rule = item["rule"].removeprefix("escalation.")
    if rule == "top":  # asked again at level 4: answered automatically (issue 14)
        return dict(item, rule="top", outcome="refused", level=TOP_LEVEL)
    if rule.startswith("refused."):
        level = levels.get((item["escalation_id"], item["version"]), 0) + 1
        return dict(item, rule=rule.removeprefix("refused."), outcome="refused", level=level)
    return dict(item, outcome="accepted", level=int(rule.removeprefix("level_") or 0))
