"""The lines of ``tiersync explain``: every rule family's view of one escalation."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.decision import Decision, Observation
from core.model import Escalation, SlaMetric
from core.policy import validation
from core.policy.conditions import describe
from core.policy.escalation import assess
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
    verdict = assess(escalation, config, policy.config.premium_plans,
                     policy.escalation_calendar, now)
    outcome = f"refused ({verdict.refusal})" if verdict.refusal else "accepted"
    lines.append(f"escalation: a request now would be {outcome}: {verdict.detail}"
                 + (f"; eligible from {verdict.values['eligible_at']}"
                    if "eligible_at" in verdict.values else ""))
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
            + tier_lines(after, policy)
            + decision_lines(decision))
