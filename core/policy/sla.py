"""SLA clocks (seeds 000, 002, 003): due times, met times, on-time flags, warnings and breaches.

Evaluated on every decision, including periodic ones without an observation, so a breach is
caught when nothing changed. ``at`` is when the observed change happened (the time a state was
reached); ``now`` is the time of the evaluation (warnings and breaches).

- due = calendar.add(start, target + paused business seconds); while paused the due time shown
  stays where it was and is moved on when the clock resumes.
- a met metric keeps its due time; ``on_time`` is met_at <= due_at; an unmet metric past its due
  time is ``on_time = False`` and breached (``breached_at`` = the due time).
- warning once ``warning_at`` of the target has elapsed: ``warned_at`` = when it was posted.
- a late metric gets an automatic delayed reason (prefixed ``tiersync:``) unless a person wrote
  one; an automatic one may be rewritten, a person's never.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.decision import Decision, Note, RuleHit
from core.model import Escalation, SlaClock, SlaMetric, SlaMetricName
from core.policy.calendar import BusinessCalendar
from core.policy.sla_config import MetricRule, SlaConfig, SlaPolicy
from core.policy.text import METRIC_LABELS, duration_text, hours_text, when_text

AUTO_REASON_PREFIX = "tiersync: "


@dataclass(frozen=True)
class MetricClock:
    """What one metric's evaluation needs: its clock start, target and calendar."""

    name: SlaMetricName
    rule: MetricRule
    start: datetime | None
    target: float | None  # business seconds
    paused_seconds: float
    paused_at: datetime | None  # this metric's clock is paused since then
    calendar: BusinessCalendar
    policy: str

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    def due(self) -> datetime | None:
        if self.start is None or self.target is None:
            return None
        return self.calendar.add(self.start, self.target + self.paused_seconds)

    def remaining(self, due: datetime, now: datetime) -> float:
        """Business time left until ``due`` (frozen while paused; negative when overdue)."""
        return self.calendar.business_seconds(self.paused_at or now, due)


def metric_clocks(escalation: Escalation, clock: SlaClock, config: SlaConfig, policy: SlaPolicy,
                  calendar: BusinessCalendar) -> list[MetricClock]:
    clocks = []
    for name, rule in config.metrics.items():
        work = rule.starts == "work_started"
        clocks.append(MetricClock(
            name=name, rule=rule, start=clock.started_at if work else escalation.routed_at,
            target=policy.target_seconds(escalation, name),
            paused_seconds=clock.paused_seconds if work else 0.0,
            paused_at=clock.paused_at if work else None, calendar=calendar, policy=policy.name))
    return clocks


def sla_step(escalation: Escalation, config: SlaConfig, calendars: dict[str, BusinessCalendar],
             now: datetime, at: datetime) -> Decision:
    policy = config.select(escalation) if escalation.routed_at else None
    if policy is None:
        return Decision()
    calendar = calendars[policy.calendar]
    decision = Decision()
    clock = advance_clock(escalation, config, policy, calendar, at, decision)
    metrics = dict(escalation.sla)
    for metric in metric_clocks(escalation, clock, config, policy, calendar):
        current = escalation.sla.get(metric.name, SlaMetric())
        updated = step_metric(current, metric, escalation, config, now, at, decision)
        if updated != SlaMetric() or metric.name in escalation.sla:
            metrics[metric.name] = updated
    if metrics != escalation.sla:
        decision.changes["sla"] = metrics
    if clock != escalation.sla_clock:
        decision.changes["sla_clock"] = clock
    return decision


def advance_clock(escalation: Escalation, config: SlaConfig, policy: SlaPolicy,
                  calendar: BusinessCalendar, at: datetime, decision: Decision) -> SlaClock:
    """Start, pause or resume the work clock for the escalation's current state."""
    clock = escalation.sla_clock.model_copy()
    if clock.policy != policy.name:
        clock.policy = policy.name
        decision.hits.append(RuleHit("sla", f"policy.{policy.name}", f"calendar {policy.calendar}"))
    state = escalation.state
    if clock.started_at is None and state in config.work_starts_when:
        clock.started_at = at
        decision.hits.append(RuleHit("sla", "clock.started", f"{state.value} at {when_text(at)}"))
    if clock.started_at is None:
        return clock
    pausing = state.is_open and state in config.pause_when
    if pausing and clock.paused_at is None:
        clock.paused_at = max(at, clock.started_at)
        decision.hits.append(RuleHit("sla", "clock.paused", state.value))
    elif not pausing and clock.paused_at is not None:
        paused = calendar.business_seconds(clock.paused_at, max(at, clock.paused_at))
        clock.paused_seconds = clock.paused_seconds + paused
        clock.paused_at = None
        decision.hits.append(RuleHit("sla", "clock.resumed", f"paused {duration_text(paused)}"))
    return clock


def step_metric(current: SlaMetric, metric: MetricClock, escalation: Escalation,
                config: SlaConfig, now: datetime, at: datetime, decision: Decision) -> SlaMetric:
    result = current.model_copy()
    state = escalation.state
    if result.met_at is None and state in metric.rule.met_when:
        result.met_at = at
        result.due_at = metric.due()
        decision.hits.append(RuleHit("sla", f"{metric.name.value}.met", when_text(at)))
    elif result.met_at is None and state.is_open:
        result.due_at = metric.due()
    if result.met_at is not None:
        result.on_time = None if result.due_at is None else result.met_at <= result.due_at
        if result.on_time is False and result.breached_at is None:
            _breach(result, metric, config, decision, late_by=result.met_at)
    elif state.is_open and result.due_at is not None and not metric.paused:
        _check_open(result, metric, config, now, decision)
    _delayed_reason(result, metric)
    return result


def _check_open(result: SlaMetric, metric: MetricClock, config: SlaConfig, now: datetime,
                decision: Decision) -> None:
    if now >= result.due_at:
        result.on_time = False
        if result.breached_at is None:
            _breach(result, metric, config, decision, late_by=None)
        return
    result.on_time = None
    if result.warned_at is None and metric.target is not None:
        remaining = metric.remaining(result.due_at, now)
        if remaining <= (1 - config.warning_at) * metric.target:
            result.warned_at = now
            _warn(result, metric, config, remaining, decision)


def _warn(result: SlaMetric, metric: MetricClock, config: SlaConfig, remaining: float,
          decision: Decision) -> None:
    label = METRIC_LABELS[metric.name]
    decision.notes.append(Note(
        target=config.notify, rule=f"sla.{metric.name.value}.warning",
        key=f"sla-warning:{metric.name.value}",
        body=f"SLA warning: the {label} is due {when_text(result.due_at, metric.calendar)}; "
             f"{duration_text(remaining)} of business time left of the {hours_text(metric.target)} "
             f"target (SLA policy {metric.policy})."))
    decision.hits.append(RuleHit("sla", f"{metric.name.value}.warning",
                                 f"{duration_text(remaining)} left"))


def _breach(result: SlaMetric, metric: MetricClock, config: SlaConfig, decision: Decision,
            late_by: datetime | None) -> None:
    result.breached_at = result.due_at
    label = METRIC_LABELS[metric.name]
    due = when_text(result.due_at, metric.calendar)
    if late_by is None:
        body = f"SLA breach: the {label} was due {due} and is not done yet"
    else:
        body = f"SLA breach: the {label} was due {due} and was done {when_text(late_by)}"
    decision.notes.append(Note(
        target=config.notify, rule=f"sla.{metric.name.value}.breach",
        key=f"sla-breach:{metric.name.value}",
        body=f"{body} ({hours_text(metric.target)} target, SLA policy {metric.policy})."))
    decision.hits.append(RuleHit("sla", f"{metric.name.value}.breach", f"due {due}"))


def _delayed_reason(result: SlaMetric, metric: MetricClock) -> None:
    written_by_person = result.delayed_reason and not result.delayed_reason.startswith(
        AUTO_REASON_PREFIX)
    if written_by_person:
        return
    if result.on_time is not False:
        result.delayed_reason = None
        return
    target = hours_text(metric.target)
    if result.met_at is None:
        reason = f"not done within the {target} business-hour target"
    else:
        late = metric.calendar.business_seconds(result.due_at, result.met_at)
        reason = f"done {duration_text(late)} business time after the {target} target"
    result.delayed_reason = f"{AUTO_REASON_PREFIX}{reason} (due {when_text(result.due_at)})"
