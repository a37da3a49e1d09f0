"""Pure support functions for ``tiersync status`` and ``tiersync explain``.

``status_rows`` is the queue manager's board (seed 000 step 6): one row per escalation with its
links, state, tier, queue and, per SLA metric, the due time, the business time remaining and
whether it is met, warned or breached, evaluated at ``now`` (so a breach shows even before the
next sync cycle has recorded it). ``explain`` lists, for one escalation, which validation,
routing, SLA, escalation and tier rules apply and what the policy would decide.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from core.decision import Observation
from core.model import Escalation, SlaMetric
from core.policy import abuse
from core.policy.escalation_policy import EscalationPolicy, apply_changes
from core.policy.explain import explain_lines
from core.policy.queue import queue_rank
from core.policy.review import review_status
from core.policy.sla import MetricClock, metric_clocks, sla_step

STATUS_ORDER = {"breached": 0, "warning": 1, "paused": 2, "running": 3, "not started": 4,
                "no target": 5, "met late": 6, "met": 7, "stopped": 8}


def project_sla(escalation: Escalation, policy: EscalationPolicy,
                now: datetime) -> tuple[Escalation, dict[str, MetricClock]]:
    """The escalation with its SLA evaluated at ``now``, and each metric's clock."""
    config = policy.config.sla
    projected = apply_changes(escalation, sla_step(escalation, config, policy.calendars, now,
                                                   now).changes)
    sla_policy = config.select(projected) if projected.routed_at else None
    if sla_policy is None:
        return projected, {}
    calendar = policy.calendars[sla_policy.calendar]
    clocks = metric_clocks(projected, projected.sla_clock, config, sla_policy, calendar)
    return projected, {clock.name.value: clock for clock in clocks}


def metric_status(metric: SlaMetric, clock: MetricClock, is_open: bool) -> str:
    if metric.met_at is not None:
        return "met late" if metric.on_time is False else "met"
    if not is_open:
        return "stopped"
    if metric.on_time is False:
        return "breached"
    if clock.target is None:
        return "no target"
    if metric.due_at is None:
        return "not started"
    if clock.paused:
        return "paused"
    return "warning" if metric.warned_at is not None else "running"


def _metric_row(metric: SlaMetric, clock: MetricClock, is_open: bool,
                now: datetime) -> dict[str, Any]:
    status = metric_status(metric, clock, is_open)
    remaining = None
    if status in ("running", "warning", "breached", "paused") and metric.due_at is not None:
        remaining = clock.remaining(metric.due_at, now)
    return {"due_at": metric.due_at, "met_at": metric.met_at, "on_time": metric.on_time,
            "target_hours": clock.target / 3600 if clock.target else None,
            "remaining_seconds": remaining, "warned_at": metric.warned_at,
            "breached_at": metric.breached_at, "delayed_reason": metric.delayed_reason,
            "status": status}


def status_row(escalation: Escalation, policy: EscalationPolicy, now: datetime) -> dict[str, Any]:
    projected, clocks = project_sla(escalation, policy, now)
    is_open = projected.state.is_open
    sla = {name: _metric_row(projected.sla.get(clock.name, SlaMetric()), clock, is_open, now)
           for name, clock in clocks.items()}
    statuses = [row["status"] for row in sla.values()]
    dues = [row["due_at"] for row in sla.values()
            if row["due_at"] is not None and row["status"] in ("running", "warning", "breached",
                                                                "paused")]
    origin = projected.origin()
    return {**_row_head(projected, sla, statuses, dues, origin), **_row_extras(projected, policy, now)}


def _row_head(projected: Escalation, sla: dict[str, Any], statuses: list[str], dues: list[Any],
              origin: Any) -> dict[str, Any]:
    return {
        "id": projected.id, "title": projected.title, "sr_number": projected.sr_number,
        "links": [f"{link.tracker}:{link.key or link.remote_id}" for link in projected.links],
        "origin": origin.tracker if origin else None, "state": projected.state.value,
        "tier": projected.tier.value, "queue": projected.queue,
        "routing_rule": projected.routing_rule,
        "severity": projected.severity.value if projected.severity else None,
        "support_plan": projected.support_plan.value if projected.support_plan else None,
        "escalation_level": projected.escalation_level, "assignee": projected.assignee,
        "sla_policy": projected.sla_clock.policy, "sla": sla,
        "flag": min(statuses, key=STATUS_ORDER.__getitem__) if statuses else None,
        "next_due_at": min(dues) if dues else None,
    }


def _row_extras(escalation: Escalation, policy: EscalationPolicy, now: datetime) -> dict[str, Any]:
    """Review clock, queue rank (evaluated at ``now``), priority abuse, not converted."""
    config = policy.config.queue_rank
    live = config and escalation.state.is_open and escalation.routing_rule
    rank = queue_rank(escalation, config, now) if live else escalation.queue_rank
    calendar = policy.review_calendar
    remaining = None
    if escalation.review_due_at and escalation.review_met_at is None and calendar is not None:
        remaining = calendar.business_seconds(now, escalation.review_due_at)
    return {"queue_rank": rank, "customer_priority": getattr(escalation.customer_priority,
                                                             "value", None),
            "requester": escalation.requester_email, "partner": escalation.partner_name,
            "review": {"level": escalation.review_level, "due_at": escalation.review_due_at,
                       "met_at": escalation.review_met_at, "met_by": escalation.review_met_by,
                       "remaining_seconds": remaining,
                       "status": review_status(escalation, now)},
            "priority_abuse": escalation.priority_abuse,
            "not_converted_reason": escalation.not_converted_reason}


def _sort_key(row: dict[str, Any]) -> tuple:
    is_open = row["state"] not in ("closed", "rejected")
    far = datetime.max.replace(tzinfo=timezone.utc)
    rank = row["queue_rank"] if row["queue_rank"] is not None else float("inf")
    return (not is_open, rank, row["next_due_at"] or far, row["id"])


def status_rows(escalations: Iterable[Escalation], policy: EscalationPolicy,
                now: datetime) -> list[dict[str, Any]]:
    """The status board in queue order: open escalations first, then by queue rank (seeds
    002/003: priority x plan x age), then the soonest SLA due."""
    now = now.astimezone(timezone.utc)
    return sorted((status_row(e, policy, now) for e in escalations), key=_sort_key)


def not_converted_rows(escalations: Iterable[Escalation]) -> list[dict[str, Any]]:
    """Records left alone because their sender is not registered (seed 003)."""
    rows = []
    for item in escalations:
        if not item.not_converted_reason:
            continue
        origin = item.origin()
        rows.append({"id": item.id, "record": f"{origin.tracker}:{origin.key or origin.remote_id}"
                     if origin else None, "requester": item.requester_email,
                     "title": item.title, "seen_at": item.created_at,
                     "reason": item.not_converted_reason})
    return sorted(rows, key=lambda row: row["seen_at"])


def abuse_report(escalations: Iterable[Escalation], policy: EscalationPolicy) -> dict[str, Any]:
    """Priority-abuse counters per requester and partner (seed 003), for status and reports."""
    return abuse.counters(escalations, policy.config.priority_abuse)


def explain(before: Escalation | None, after: Escalation, observation: Observation | None,
            policy: EscalationPolicy, now: datetime) -> list[str]:
    """Which rules apply to the escalation and what the policy decides, one line each."""
    now = now.astimezone(timezone.utc)
    projected, clocks = project_sla(after, policy, now)
    decision = policy.decide(before, after, observation, now)
    return explain_lines(after, projected, clocks, observation, decision, policy, now)
