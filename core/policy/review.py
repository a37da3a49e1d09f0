"""The Escalation Manager review clock (seed 002).

Seed 002: the requester gives "a summary of why the case needs to be escalated to an Escalation
Manager for review within 4 business hours"; "an Escalation Manager will review the request and
reply directly in the case you escalated with a decision or plan of action".

- Every accepted level starts a review: due ``hours`` business hours of ``calendar`` later;
  ``review_level`` is the level under review, earlier results are cleared.
- Met the first time an Escalation Manager answers: a comment whose author matches one of
  ``managers`` (the Escalation Managers group: addresses or glob patterns), or a new value in
  the ``escalation_decision`` field (mapped from a tracker) when ``decision_field`` is on.
- Warning once ``warning_at`` of the business time has elapsed, breach at the due time, each
  once per level, as internal notes to ``notify``; the met note says whether it was on time.
"""
from __future__ import annotations

import fnmatch
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from core.decision import Decision, Note, Observation, RuleHit
from core.model import Escalation
from core.policy.calendar import BusinessCalendar
from core.policy.text import duration_text, when_text


class ReviewConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: PositiveFloat = 4
    calendar: str
    warning_at: float = Field(default=0.75, gt=0, lt=1)
    notify: str = "all"
    managers: list[str] = Field(default_factory=list)  # the Escalation Managers (globs)
    decision_field: bool = True  # a new escalation_decision value meets the review

    def is_manager(self, author: str | None) -> bool:
        who = (author or "").casefold()
        return bool(who) and any(fnmatch.fnmatchcase(who, p.casefold()) for p in self.managers)


def review_open(escalation: Escalation) -> bool:
    return escalation.review_due_at is not None and escalation.review_met_at is None


def review_status(escalation: Escalation, now: datetime) -> str | None:
    if escalation.review_due_at is None:
        return None
    if escalation.review_met_at is not None:
        late = escalation.review_met_at > escalation.review_due_at
        return "met late" if late else "met"
    if not escalation.state.is_open:
        return "stopped"
    if now >= escalation.review_due_at:
        return "breached"
    return "warning" if escalation.review_warned_at else "running"


def review_step(escalation: Escalation, config: ReviewConfig | None,
                calendar: BusinessCalendar | None, observation: Observation | None,
                now: datetime, at: datetime) -> Decision:
    if config is None or calendar is None:
        return Decision()
    if escalation.escalation_level > escalation.review_level:
        return _start(escalation, config, calendar, at)
    if not review_open(escalation):
        return Decision()
    met = _met(escalation, config, observation, at)
    if met is not None:
        return met
    if escalation.state.is_open:
        return _check(escalation, config, calendar, now)
    return Decision()


def _start(escalation: Escalation, config: ReviewConfig, calendar: BusinessCalendar,
           at: datetime) -> Decision:
    level = escalation.escalation_level
    due = calendar.add(at, config.hours * 3600)
    changes = {"review_level": level, "review_started_at": at, "review_due_at": due,
               "review_met_at": None, "review_met_by": None, "review_warned_at": None,
               "review_breached_at": None}
    note = Note(target=config.notify, rule="escalation.review.started",
                key=f"review-started:{level}:{at.isoformat()}",
                body=f"Escalation Manager review of the level {level} escalation is due "
                     f"{when_text(due, calendar)} ({config.hours:g} business hours).")
    return Decision(changes=changes, notes=[note],
                    hits=[RuleHit("escalation", "review.started", f"level {level}, due "
                                  f"{when_text(due)}")])


def _met(escalation: Escalation, config: ReviewConfig, observation: Observation | None,
         at: datetime) -> Decision | None:
    if observation is None:
        return None
    started = escalation.review_started_at or at
    replies = [c for c in observation.new_comments
               if config.is_manager(c.author) and c.created_at >= started]
    if replies:
        first = min(replies, key=lambda c: c.created_at)
        return _met_decision(escalation, config, first.created_at, first.author or "")
    if config.decision_field and observation.changes.get("escalation_decision"):
        return _met_decision(escalation, config, max(at, started),
                             f"{observation.tracker} field escalation_decision")
    return None


def _met_decision(escalation: Escalation, config: ReviewConfig, when: datetime,
                  who: str) -> Decision:
    due = escalation.review_due_at
    on_time = "on time" if when <= due else f"late (due {when_text(due)})"
    level = escalation.review_level
    note = Note(target=config.notify, rule="escalation.review.met", key=f"review-met:{level}",
                body=f"Escalation Manager review of level {level} met: {who} answered "
                     f"{when_text(when)}, {on_time}.")
    return Decision(changes={"review_met_at": when, "review_met_by": who}, notes=[note],
                    hits=[RuleHit("escalation", "review.met", f"{who} {on_time}")])


def _check(escalation: Escalation, config: ReviewConfig, calendar: BusinessCalendar,
           now: datetime) -> Decision:
    due, level = escalation.review_due_at, escalation.review_level
    if now >= due:
        if escalation.review_breached_at is not None:
            return Decision()
        note = Note(target=config.notify, rule="escalation.review.breach",
                    key=f"review-breach:{level}",
                    body=f"Escalation Manager review breach: the level {level} review was due "
                         f"{when_text(due, calendar)} and no Escalation Manager has answered.")
        return Decision(changes={"review_breached_at": due}, notes=[note],
                        hits=[RuleHit("escalation", "review.breach", f"due {when_text(due)}")])
    if escalation.review_warned_at is not None:
        return Decision()
    remaining = calendar.business_seconds(now, due)
    if remaining > (1 - config.warning_at) * config.hours * 3600:
        return Decision()
    note = Note(target=config.notify, rule="escalation.review.warning",
                key=f"review-warning:{level}",
                body=f"Escalation Manager review warning: the level {level} review is due "
                     f"{when_text(due, calendar)}; {duration_text(remaining)} of business time "
                     f"left of {config.hours:g} h.")
    return Decision(changes={"review_warned_at": now}, notes=[note],
                    hits=[RuleHit("escalation", "review.warning",
                                  f"{duration_text(remaining)} left")])
