"""When a periodic decision about an escalation could next differ from deciding it now.

A pure function of the escalation, the policy file and ``now``: the earliest instant at which
one of the policy's time-based rules fires for an escalation nobody touches. Until then,
deciding the escalation again (with no observation) gives what deciding it now gave, so the
engine need not ask. ``None``: no time-based rule can fire until the escalation changes.

- SLA (``sla``): for each metric whose clock runs (started, unmet, not paused, state open): the
  warning instant (the business time left reaches ``1 - warning_at`` of the target) while not
  warned, and the due time (breach, ``on_time`` turns false).
- Escalation Manager review: a level above the reviewed one starts a review now; an open review
  warns and breaches like an SLA metric.
- Queue rank: the next ``age_step_hours`` boundary of the case's age, until ``max_age_hours``.
- Daily update: ``after_business_hours`` after the latest tier 2 update, clock start or reminder.
- Management escalation needs no entry: its minimum age is only assessed when a request
  arrives, and a request is a change, which the engine decides as it comes.
- Validation, routing, ownership, announcements: no time-based rule (they follow changes).

An instant already past comes back as ``now``; a closed or rejected escalation has none.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Iterable

from core.model import Escalation, SlaMetric
from core.policy.calendar import BusinessCalendar
from core.policy.config import PolicyFile
from core.policy.escalation import case_start
from core.policy.queue import queue_rank
from core.policy.review import review_open
from core.policy.sla import MetricClock, metric_clocks


def next_decision_at(escalation: Escalation, config: PolicyFile,
                     calendars: dict[str, BusinessCalendar], now: datetime) -> datetime | None:
    """The earliest instant (>= ``now``) a periodic decision could change (module rules)."""
    if not escalation.state.is_open:
        return None
    found = [*_sla(escalation, config, calendars, now), *_review(escalation, config, calendars, now),
             *_rank(escalation, config, now), *_daily(escalation, config, calendars, now)]
    return max(min(found), now) if found else None


def warning_instant(calendar: BusinessCalendar, now: datetime, due: datetime,
                    left: float) -> datetime:
    """The first moment from ``now`` on with at most ``left`` business seconds before ``due``."""
    remaining = calendar.business_seconds(now, due)
    if remaining <= left:
        return now
    return calendar.add(now, remaining - left)


def _sla(escalation: Escalation, config: PolicyFile, calendars: dict[str, BusinessCalendar],
         now: datetime) -> Iterable[datetime]:
    sla = config.sla
    policy = sla.select(escalation) if escalation.routed_at else None
    if policy is None:
        return []
    calendar = calendars[policy.calendar]
    found: list[datetime] = []
    for metric in metric_clocks(escalation, escalation.sla_clock, sla, policy, calendar):
        current = escalation.sla.get(metric.name, SlaMetric())
        found += _metric(escalation, metric, current, sla.warning_at, now)
    return found


def _metric(escalation: Escalation, metric: MetricClock, current: SlaMetric, warning_at: float,
            now: datetime) -> list[datetime]:
    if current.met_at is not None:
        return []
    if escalation.state in metric.rule.met_when:
        return [now]  # met by the state it is in: decided now
    due = metric.due()
    if due is None or metric.paused:
        return []
    if due <= now:
        settled = current.breached_at is not None and current.on_time is False
        return [] if settled else [now]
    found = [due]
    if current.warned_at is None and metric.target is not None:
        found.append(warning_instant(metric.calendar, now, due, (1 - warning_at) * metric.target))
    return found


def _review(escalation: Escalation, config: PolicyFile, calendars: dict[str, BusinessCalendar],
            now: datetime) -> list[datetime]:
    review = config.management_escalation.review
    calendar = calendars.get(review.calendar) if review else None
    if review is None or calendar is None:
        return []
    if escalation.escalation_level > escalation.review_level:
        return [now]  # a review starts
    if not review_open(escalation):
        return []
    due = escalation.review_due_at
    if due <= now:
        return [] if escalation.review_breached_at is not None else [now]
    found = [due]
    if escalation.review_warned_at is None:
        left = (1 - review.warning_at) * review.hours * 3600
        found.append(warning_instant(calendar, now, due, left))
    return found


def _rank(escalation: Escalation, config: PolicyFile, now: datetime) -> list[datetime]:
    rank = config.queue_rank
    if rank is None or escalation.routing_rule is None:
        return []
    if queue_rank(escalation, rank, now) != escalation.queue_rank:
        return [now]
    start = case_start(escalation)
    hours = max(0.0, (now - start).total_seconds() / 3600)
    steps = math.floor(hours / rank.age_step_hours)
    if steps * rank.age_step_hours >= rank.max_age_hours:
        return []
    return [start + timedelta(hours=(steps + 1) * rank.age_step_hours)]


def _daily(escalation: Escalation, config: PolicyFile, calendars: dict[str, BusinessCalendar],
           now: datetime) -> list[datetime]:
    daily = config.tiers.daily_update
    if daily is None or escalation.state not in daily.states:
        return []
    moments = (escalation.last_tier2_update_at, escalation.sla_clock.started_at,
               escalation.update_reminded_at)
    since = max((moment for moment in moments if moment is not None), default=None)
    if since is None:
        return []
    return [calendars[daily.calendar].add(since, daily.after_business_hours * 3600)]
