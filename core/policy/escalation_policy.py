"""The escalation policy: ``decide(before, after, observation, now) -> Decision``.

A pure function of its inputs and the policy file: no I/O, no clock of its own. The rule
families run in a fixed order, each seeing the changes of the ones before it:

0. the case's creation time comes from the origin record only
1. tiers: note when tier 2 last updated the case
2. validation and entitlement (a failure rejects the escalation and ends the decision)
3. routing
4. tiers and ownership (original owner, hand-back, not resolved, tier holding the case)
5. SLA clocks, due times, warnings, breaches
6. management escalation (requests, level 4 the top, notifications)
7. Escalation Manager review clock
8. queue rank
9. priority abuse
10. daily-update reminder
11. state-change announcement to the other trackers

Changes equal to the escalation's current values are dropped, so deciding again on the result
(at the same ``now``) changes nothing.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from core.decision import Decision, Note, Observation
from core.model import Escalation, State
from core.policy.basic import route_step
from core.policy.calendar import BusinessCalendar
from core.policy.config import PolicyFile, read_policy_file
from core.policy.abuse import abuse_step
from core.policy.escalation import escalation_step, origin_age_step
from core.policy.next_due import next_decision_at
from core.policy.people import TableDirectory
from core.policy.queue import rank_step
from core.policy.review import review_step
from core.policy.sla import sla_step
from core.policy.tiers import daily_update_step, ownership_step, record_update_step, tier2_set
from core.policy.validation import validate_step


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def event_time(observation: Observation | None, now: datetime) -> datetime:
    """When the observed change happened: the record's update time, never after ``now``."""
    if observation is None:
        return now
    return min(_aware_utc(observation.updated_at), now)


def apply_changes(escalation: Escalation, changes: dict[str, Any]) -> Escalation:
    return escalation.model_copy(update=changes) if changes else escalation


@dataclass(frozen=True)
class Inputs:
    before: Escalation | None
    observation: Observation | None
    now: datetime
    at: datetime


class EscalationPolicy:
    def __init__(self, config: PolicyFile, source: str = "<memory>"):
        self.config = config
        self.source = source
        self.calendars = config.build_calendars()
        self.directory = TableDirectory(config.people)
        self.tier2 = tier2_set(config.tiers, config.routing)

    def decide(self, before: Escalation | None, after: Escalation,
               observation: Observation | None, now: datetime) -> Decision:
        now = _aware_utc(now)
        inputs = Inputs(before, observation, now, event_time(observation, now))
        decision, current = Decision(), after
        for step in self._steps():
            part = step(current, inputs)
            decision.merge(part)
            current = apply_changes(current, part.changes)
            if current.state is State.REJECTED and after.state is not State.REJECTED:
                break
        decision.merge(self._announce(before, current, observation, inputs.at))
        decision.changes = {name: value for name, value in decision.changes.items()
                            if getattr(after, name) != value}
        return decision

    def next_decision_at(self, escalation: Escalation, now: datetime) -> datetime | None:
        """The earliest instant a periodic decision could change (core/policy/next_due.py)."""
        return next_decision_at(escalation, self.config, self.calendars, _aware_utc(now))

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identifies the policy's rules: times computed under other rules are stale."""
        text = self.config.model_dump_json()
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def _steps(self) -> tuple[Callable[[Escalation, Inputs], Decision], ...]:
        config = self.config
        return (
            lambda esc, i: origin_age_step(i.before, esc, i.observation),
            lambda esc, i: record_update_step(esc, i.observation, self.tier2, i.at),
            lambda esc, i: validate_step(esc, config.validation),
            lambda esc, i: route_step(config.routing, esc, i.at),
            lambda esc, i: ownership_step(i.before, esc, i.observation, config.tiers,
                                          config.routing, i.at),
            lambda esc, i: sla_step(esc, config.sla, self.calendars, i.now, i.at),
            lambda esc, i: escalation_step(esc, config.management_escalation,
                                           config.premium_plans, self.escalation_calendar,
                                           i.observation, i.at, self.directory),
            lambda esc, i: review_step(esc, config.management_escalation.review,
                                       self.review_calendar, i.observation, i.now, i.at),
            lambda esc, i: rank_step(esc, config.queue_rank, i.now),
            lambda esc, i: abuse_step(esc, config.priority_abuse),
            lambda esc, i: daily_update_step(esc, config.tiers, self.calendars, i.now),
        )

    @property
    def escalation_calendar(self) -> BusinessCalendar | None:
        name = self.config.management_escalation.calendar
        return self.calendars.get(name) if name else None

    @property
    def review_calendar(self) -> BusinessCalendar | None:
        review = self.config.management_escalation.review
        return self.calendars.get(review.calendar) if review else None

    def warnings(self) -> list[str]:
        """Settings that are valid but probably not what the admin wants (``tiersync check``)."""
        found, escalation = [], self.config.management_escalation
        if not self.config.validation.entitlement.requesters:
            found.append(f"{self.source}: validation.entitlement.requesters is empty: every sender "
                         f"is converted (seed 003 converts only registered addresses)")
        review = escalation.review
        if review is not None and not review.managers and not review.decision_field:
            found.append(f"{self.source}: management_escalation.review: no managers and no "
                         f"decision_field: the review clock can never be met")
        named = {name.casefold() for name in self.config.people.audiences}
        named.add(self.config.people.csm.audience.casefold())
        missing = sorted({who for number in escalation.levels for who in escalation.audience(number)
                          if who.casefold() not in named})
        if missing:
            found.append(f"{self.source}: people.audiences has no addresses for {missing}: they "
                         f"are named in the level notes but not notified")
        return found

    def _announce(self, before: Escalation | None, current: Escalation,
                  observation: Observation | None, at: datetime) -> Decision:
        if not (self.config.announce_state_changes and observation and before is not None
                and "state" in observation.changes and before.state != current.state):
            return Decision()
        return Decision(notes=[Note(
            target="others", rule="sync.announce_state",
            body=f"State changed from {before.state.value} to {current.state.value} in "
                 f"{observation.tracker}.",
            key=f"state:{current.state.value}:{at.isoformat()}")])


def load_policy(path: Path | str) -> EscalationPolicy:
    """Load and validate a policy file; raise ConfigError naming file, key path and value."""
    return EscalationPolicy(read_policy_file(Path(path)), source=str(path))
