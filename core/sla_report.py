"""The SLA compliance report of a period (``tiersync report``): the figures, no rendering.

Rules (docs/audit.md, "The SLA report"):
- the period is [from, to): ``--to`` as a date includes that whole day (UTC);
- the population is the escalations opened in the period (``created_at``);
- per metric an escalation is *met* (met on time), *late* (met after its due time), *breached*
  (not met and marked breached, or past due while open, or due before it was closed), *running*
  (due later), or not counted (no target, or closed before it was due); the on-time share is
  met / (met + late + breached);
- shares are given overall and by severity, support plan, queue, tier and origin tracker;
- time in each open state is wall-clock hours from each version of the escalation's history to
  the next, clipped to the period (and to now); closed and rejected are end states, not counted;
- management escalations are the policy's decisions in the period (audit entries): accepted per
  level, refused per level and rule; rejected escalations are the population's rejected ones,
  counted by their rejection reason; volume is opened / closed / rejected per day (per week over
  62 days, per month over 366 days).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy.engine import Connection

from core.errors import TiersyncError
from core.model import Escalation, SlaMetricName, State
from core.policy.abuse import counters as abuse_counters
from core.report_data import history_states, management_decisions, opened_escalations

METRICS = [m.value for m in SlaMetricName]
DIMENSIONS = ("severity", "support_plan", "queue", "tier", "tracker")
COUNTED = ("met", "late", "breached")
END_STATES = (State.CLOSED.value, State.REJECTED.value)


class ReportError(TiersyncError):
    """A report period that cannot be read."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive

    @property
    def label(self) -> str:
        last = self.end - timedelta(microseconds=1)
        return f"{self.start:%Y-%m-%d} to {last:%Y-%m-%d}"


def _bound(text: str, name: str, is_end: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if is_end else 0)
            return datetime.combine(day, time(), timezone.utc)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f"report {name} {text!r}: give a date (2026-03-01) or an ISO time") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_period(start: str, end: str) -> Period:
    period = Period(_bound(start, "--from", False), _bound(end, "--to", True))
    if period.end <= period.start:
        raise ReportError(f"report: --to {end} is not after --from {start}")
    return period


# -- per metric outcomes ------------------------------------------------------------------------
def outcome(escalation: Escalation, metric: str, now: datetime,
            ended_at: datetime | None = None) -> str | None:
    """met | late | breached | running, or None when the metric does not count.

    A closed (or rejected) escalation breached a metric it never met if it was marked so, or if
    the metric was due before it ended (``ended_at``, from its history)."""
    sla = escalation.sla.get(SlaMetricName(metric))
    if sla is None:
        return None
    if sla.met_at is not None:
        return "late" if sla.on_time is False else "met"
    if not escalation.state.is_open:
        overdue = sla.due_at is not None and ended_at is not None and sla.due_at < ended_at
        return "breached" if sla.on_time is False or sla.breached_at or overdue else None
    if sla.on_time is False or sla.breached_at or (sla.due_at and sla.due_at <= now):
        return "breached"
    return "running" if sla.due_at else None


def dimension_values(escalation: Escalation) -> dict[str, str]:
    origin = escalation.origin()
    return {"severity": f"Sev {escalation.severity.value}" if escalation.severity else "none",
            "support_plan": escalation.support_plan.value if escalation.support_plan else "none",
            "queue": escalation.queue or "none", "tier": escalation.tier.value,
            "tracker": origin.tracker if origin else "none"}


def _tally() -> dict[str, int]:
    return {"met": 0, "late": 0, "breached": 0, "running": 0}


def _share(counts: dict[str, int]) -> dict[str, Any]:
    decided = sum(counts[k] for k in COUNTED)
    return dict(counts, decided=decided, on_time_share=counts["met"] / decided if decided else None)


def ended_times(versions: dict[str, list[tuple[datetime, str]]]) -> dict[str, datetime]:
    """When each escalation whose last state is an end state got there."""
    return {eid: steps[-1][0] for eid, steps in versions.items() if steps and steps[-1][1] in END_STATES}


def compliance(escalations: list[Escalation], now: datetime,
               ended: dict[str, datetime] | None = None) -> dict[str, Any]:
    result = {}
    for metric in METRICS:
        overall = _tally()
        by: dict[str, dict[str, dict[str, int]]] = {d: defaultdict(_tally) for d in DIMENSIONS}
        for escalation in escalations:
            found = outcome(escalation, metric, now, (ended or {}).get(escalation.id))
            if found is None:
                continue
            overall[found] += 1
            for dimension, value in dimension_values(escalation).items():
                by[dimension][value][found] += 1
        result[metric] = {"overall": _share(overall),
                          "by": {d: {v: _share(c) for v, c in sorted(by[d].items())} for d in DIMENSIONS}}
    return result


def breaches(escalations: list[Escalation], now: datetime,
             ended: dict[str, datetime] | None = None) -> list[dict[str, Any]]:
    rows = []
    for escalation in escalations:
        for metric in METRICS:
            found = outcome(escalation, metric, now, (ended or {}).get(escalation.id))
            if found in ("late", "breached"):
                sla = escalation.sla[SlaMetricName(metric)]
                rows.append(dict(dimension_values(escalation), escalation_id=escalation.id,
                                 sr_number=escalation.sr_number, title=escalation.title,
                                 metric=metric, outcome=found, due_at=sla.due_at, met_at=sla.met_at,
                                 breached_at=sla.breached_at, delayed_reason=sla.delayed_reason))
    return sorted(rows, key=lambda r: (r["due_at"] or r["met_at"] or now, r["escalation_id"]))


# -- time in states, escalations, volume --------------------------------------------------------
def state_hours(versions: dict[str, list[tuple[datetime, str]]], period: Period,
                now: datetime) -> dict[str, dict[str, float]]:
    total: Counter[str] = Counter()
    seen: dict[str, set[str]] = defaultdict(set)
    stop = min(period.end, now)
    for escalation_id, steps in versions.items():
        for (at, state), following in zip(steps, steps[1:] + [(stop, None)]):
            if state in END_STATES:
                continue
            start, end = max(at, period.start), min(following[0], stop)
            if end > start:
                total[state] += (end - start).total_seconds() / 3600
                seen[state].add(escalation_id)
    return {state: {"hours": round(hours, 4), "escalations": len(seen[state]),
                    "mean_hours": round(hours / len(seen[state]), 4)}
            for state, hours in sorted(total.items())}


def escalation_summary(decisions: list[dict[str, Any]]) -> dict[str, Any]:
    by_level: dict[int, dict[str, int]] = defaultdict(lambda: {"accepted": 0, "refused": 0})
    refused: Counter[str] = Counter()
    for item in decisions:
        by_level[item["level"]][item["outcome"]] += 1
        if item["outcome"] == "refused":
            refused[item["rule"]] += 1
    return {"by_level": {str(k): v for k, v in sorted(by_level.items())},
            "refused_by_rule": dict(sorted(refused.items())), "decisions": decisions}


def rejections(escalations: list[Escalation]) -> dict[str, int]:
    reasons = Counter(e.rejection_reason or _not_converted(e) or "no reason recorded"
                      for e in escalations if e.state is State.REJECTED)
    return dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def _not_converted(escalation: Escalation) -> str | None:
    reason = escalation.not_converted_reason  # seed 003: an unregistered sender (issue 14)
    return f"not converted: {reason}" if reason else None


def _bucket(at: datetime, period: Period) -> str:
    days = (period.end - period.start).days
    if days > 366:
        return f"{at:%Y-%m}"
    if days > 62:
        monday = at.date() - timedelta(days=at.weekday())
        return f"week of {monday:%Y-%m-%d}"
    return f"{at:%Y-%m-%d}"


def volume(escalations: list[Escalation], versions: dict[str, list[tuple[datetime, str]]],
           period: Period) -> list[dict[str, Any]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for escalation in escalations:
        counts[_bucket(escalation.created_at, period)]["opened"] += 1
    for steps in versions.values():
        for kind in ("closed", "rejected"):
            first = next((at for at, state in steps if state == kind), None)
            if first is not None and period.start <= first < period.end:
                counts[_bucket(first, period)][kind] += 1
    return [{"bucket": key, "opened": counts[key]["opened"], "closed": counts[key]["closed"],
             "rejected": counts[key]["rejected"]} for key in buckets(period)]


def buckets(period: Period) -> list[str]:
    """Every bucket of the period, in order, empty ones too (a quiet day is a figure)."""
    keys, day = [], period.start
    while day < period.end:
        key = _bucket(day, period)
        if not keys or keys[-1] != key:
            keys.append(key)
        day += timedelta(days=1)
    return keys


def build_report(tx: Connection, period: Period, now: datetime) -> dict[str, Any]:
    """Every figure of the report, from what the store recorded (escalations, history, audit)."""
    escalations = opened_escalations(tx, period.start, period.end)
    versions = history_states(tx, period.start, period.end)
    return assemble(escalations, versions, management_decisions(tx, period.start, period.end),
                    period, now)


def assemble(escalations: list[Escalation], versions: dict[str, list[tuple[datetime, str]]],
             decisions: list[dict[str, Any]], period: Period, now: datetime) -> dict[str, Any]:
    return {"period": {"from": period.start, "to": period.end, "label": period.label},
            "generated_at": now, "escalations": len(escalations),
            "compliance": compliance(escalations, now, ended_times(versions)),
            "breaches": breaches(escalations, now, ended_times(versions)),
            "state_hours": state_hours(versions, period, now),
            "management_escalations": escalation_summary(decisions),
            "rejections": rejections(escalations), "volume": volume(escalations, versions, period),
            "priority_abuse": abuse_counters(escalations, None)}
