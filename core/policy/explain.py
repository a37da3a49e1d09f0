"""The lines of ``tiersync explain``: every rule family's view of one escalation."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.decision import Decision, Observation
from core.model import Escalation, SlaMetric
from core.policy import validation
from core.policy.conditions import describe
from core.policy import queue
from core.policy.escalation import TOP_LEVEL, assess, case_start
from core.policy.people import notify_list, unmapped
from core.policy.review import review_status
from core.policy.sla import MetricClock
from core.policy.text import METRIC_LABELS, duration_text, hours_text, when_text
from core.policy.tiers import held_tier

if TYPE_CHECKING:
    from core.policy.escalation_policy import EscalationPolicy


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {getattr(k, "value", k): _plain(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_defaults=True, mode="json")
    if isinstance(value, datetime):
        return when_text(value)
    return getattr(value, "value", value)


def header(escalation: Escalation, observation: Observation | None) -> list[str]:
    severity = escalation.severity.value if escalation.severity else None
    plan = escalation.support_plan.value if escalation.support_plan else None
    lines = [f"escalation {escalation.id} v{escalation.version}: state {escalation.state.value}, "
             f"severity {severity}, plan {plan}, tier {escalation.tier.value}, "
             f"queue {escalation.queue}"]
    if observation is None:
        lines.append("observation: none (periodic re-evaluation)")
    else:
        lines.append(f"observation: {observation.tracker} {observation.remote_id} changed "
                     f"{sorted(observation.changes)}, {len(observation.new_comments)} new "
                     f"comment(s), at {when_text(observation.updated_at)}")
    return lines


def sla_lines(projected: Escalation, clocks: dict[str, MetricClock], policy: "EscalationPolicy",
              now: datetime) -> list[str]:
    config = policy.config.sla
    if projected.routed_at is None:
        return ["sla: not started (the escalation has not been routed)"]
    chosen = config.select(projected)
    if chosen is None:
        return ["sla: no SLA policy matches"]
    calendar = policy.calendars[chosen.calendar]
    clock = projected.sla_clock
    lines = [f"sla: policy {chosen.name!r} ({describe(chosen.when)}), calendar {chosen.calendar} "
             f"({calendar.zone.key})",
             f"sla: routed {when_text(projected.routed_at)}, work started "
             f"{when_text(clock.started_at)}, paused {duration_text(clock.paused_seconds)}"
             + (f", paused since {when_text(clock.paused_at)}" if clock.paused_at else "")]
    for name, metric_clock in clocks.items():
        metric = projected.sla.get(metric_clock.name, SlaMetric())
        label = METRIC_LABELS[metric_clock.name]
        remaining = (duration_text(metric_clock.remaining(metric.due_at, now))
                     if metric.due_at and metric.met_at is None else "-")
        lines.append(f"sla: {label}: target {hours_text(metric_clock.target)}, starts "
                     f"{metric_clock.rule.starts}, due {when_text(metric.due_at, calendar)}, "
                     f"met {when_text(metric.met_at)}, on time {metric.on_time}, "
                     f"remaining {remaining}")
    return lines


def escalation_lines(escalation: Escalation, policy: "EscalationPolicy",
                     now: datetime) -> list[str]:
    config = policy.config.management_escalation
    lines = [f"escalation: level {escalation.escalation_level}, requested "
             f"{escalation.escalation_requested}"]
    lines.append(f"escalation: case age counts from {when_text(case_start(escalation))} ("
                 + ("created in the origin tracker)" if escalation.case_created_at
                    else "first seen by tiersync)"))
    if escalation.escalation_level >= TOP_LEVEL:
        lines.append(f"escalation: level {TOP_LEVEL} is the top: a further request gets the "
                     f"automatic answer: {config.refusal.top}")
    else:
        verdict = assess(escalation, config, policy.config.premium_plans,
                         policy.escalation_calendar, now)
        outcome = f"refused ({verdict.refusal})" if verdict.refusal else "accepted"
        lines.append(f"escalation: a request now would be {outcome}: {verdict.detail}"
                     + (f"; eligible from {verdict.values['eligible_at']}"
                        if "eligible_at" in verdict.values else ""))
        lines += _audience_lines(escalation, policy, escalation.escalation_level + 1)
    lines += [f"escalation: request {a.at.isoformat()} level {a.requested}: {a.outcome} "
              f"({a.rule}) {a.from_level} -> {a.to_level}" for a in escalation.escalation_history]
    return lines + review_lines(escalation, policy, now)


def _audience_lines(escalation: Escalation, policy: "EscalationPolicy", level: int) -> list[str]:
    audience = policy.config.management_escalation.audience(level)
    people = notify_list(policy.directory, audience, escalation)
    lines = [f"escalation: level {level} would notify {', '.join(people) or 'nobody by address'}"]
    missing = unmapped(policy.directory, audience, escalation)
    if missing:
        lines.append(f"escalation: no addresses in people for: {', '.join(missing)}")
    return lines


def review_lines(escalation: Escalation, policy: "EscalationPolicy", now: datetime) -> list[str]:
    review = policy.config.management_escalation.review
    if review is None:
        return ["review: no Escalation Manager review clock configured"]
    if escalation.review_due_at is None:
        return [f"review: starts when a level is accepted ({review.hours:g} business hours, "
                f"calendar {review.calendar})"]
    return [f"review: level {escalation.review_level} {review_status(escalation, now)}: started "
            f"{when_text(escalation.review_started_at)}, due "
            f"{when_text(escalation.review_due_at, policy.review_calendar)}, met "
            f"{when_text(escalation.review_met_at)} by {escalation.review_met_by or '-'}"]


def queue_and_abuse_lines(escalation: Escalation, policy: "EscalationPolicy",
                          now: datetime) -> list[str]:
    lines = queue.explain(escalation, policy.config.queue_rank, now)
    if escalation.priority_abuse:
        lines.append(f"priority abuse: flagged by {escalation.priority_abuse!r}")
    if escalation.not_converted_reason:
        lines.append(f"validation: not converted: {escalation.not_converted_reason}")
    return lines


def tier_lines(escalation: Escalation, policy: "EscalationPolicy") -> list[str]:
    config = policy.config
    tier = held_tier(escalation, config.tiers, config.routing)
    return [f"tiers: held by {tier.value}; original owner {escalation.original_owner}; "
            f"assignee {escalation.assignee}; solution proposed by "
            f"{escalation.solution_proposed_by}; last tier 2 update "
            f"{when_text(escalation.last_tier2_update_at)}"]


def decision_lines(decision: Decision) -> list[str]:
    lines = [f"fires: {hit.family}.{hit.rule}" + (f": {hit.detail}" if hit.detail else "")
             for hit in decision.hits]
    lines += [f"change: {name} = {_plain(value)}" for name, value in decision.changes.items()]
    lines += [f"mirror: create in {m.tracker} ({m.rule}) fields {m.fields}"
              for m in decision.mirrors]
    lines += [f"note to {n.target} ({'public' if n.public else 'internal'}, key {n.key}): {n.body}"
              for n in decision.notes]
    return lines or ["decision: nothing to do"]


def explain_lines(after: Escalation, projected: Escalation, clocks: dict[str, MetricClock],
                  observation: Observation | None, decision: Decision,
                  policy: "EscalationPolicy", now: datetime) -> list[str]:
    return (header(after, observation)
            + validation.explain(after, policy.config.validation)
            + policy.config.routing.explain(after)
            + [f"routing: recorded rule {after.routing_rule!r}"]
            + sla_lines(projected, clocks, policy, now)
            + escalation_lines(after, policy, now)
            + queue_and_abuse_lines(after, policy, now)
            + tier_lines(after, policy)
            + decision_lines(decision))
