"""Management escalation (seed 002).

A request (``escalation_requested`` above ``escalation_level``, set from a tracker field) is
accepted only once the case is old enough for its severity and plan: Sev2 4 h premium / 8 h
non-premium, Sev3 8 h / 16 h, Sev4 16 h / 24 h. Severity 1 is already at outage level and is never
escalated. A refused request gets an automatic reply. An accepted one raises the level by one
(levels 1-4) and notifies that level's audience, which includes every lower level's.

Decisions taken here (documented in docs/policy.md): age counts wall-clock hours since the case
was created in its origin tracker (``case_created_at``; tiersync's first sight when unmapped; the
seed says "hours"; ``age_clock: business`` counts business hours of a calendar instead); a case
exactly at the minimum age may be escalated; "premium" is the list ``premium_plans``. A request is
the origin's request field changing to a level (1-4); every answer sets it back to 0, which the
mapping writes to the origin, so asking again is always a new, visible change. Level 4 is the top:
a further request gets an automatic answer. Every answer is kept in ``escalation_history``.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, field_validator

from core.decision import Decision, Note, Observation, RuleHit
from core.model import Escalation, EscalationAnswer, Severity, SupportPlan
from core.policy.calendar import BusinessCalendar
from core.policy.people import NO_DIRECTORY, Directory, notify_list
from core.policy.review import ReviewConfig
from core.policy.text import when_text

REFUSAL_FIELDS = {"severity", "plan_class", "minimum_hours", "eligible_at", "state", "level"}
TOP_LEVEL = 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MinimumAge(_Strict):
    premium: NonNegativeFloat
    standard: NonNegativeFloat


class Level(_Strict):
    audience: list[str] = Field(min_length=1)  # added at this level
    notify: str = "all"  # note target


class Refusal(_Strict):
    target: str = "origin"
    public: bool = True  # seed 002: an automated reply informs the user who escalated
    too_early: str = ("This case can be escalated once it is {minimum_hours} hours old "
                      "(severity {severity}, {plan_class} support), from {eligible_at}. Until then "
                      "it follows the standard support triage.")
    outage: str = ("Severity 1 cases are outage level: the 24x7 on-call team already handles "
                   "them at the highest level, so they are not escalated further.")
    closed: str = "This case is {state} and can no longer be escalated."
    no_severity: str = "This case has no severity yet, so it cannot be escalated."
    top: str = ("This case is already at the highest escalation level (4): the VP of Support "
                "is involved and drives it to completion. There is no higher level to escalate to.")

    @field_validator("too_early", "outage", "closed", "no_severity", "top")
    @classmethod
    def _placeholders(cls, template: str) -> str:
        try:
            template.format(**{name: "x" for name in REFUSAL_FIELDS})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"unknown placeholder {exc} (known: {sorted(REFUSAL_FIELDS)})") from None
        return template


def _seed_002_ages() -> dict[Severity, MinimumAge]:
    return {Severity.SEV2: MinimumAge(premium=4, standard=8),
            Severity.SEV3: MinimumAge(premium=8, standard=16),
            Severity.SEV4: MinimumAge(premium=16, standard=24)}


class ManagementEscalation(_Strict):
    age_clock: Literal["wall", "business"] = "wall"
    calendar: str | None = None  # required for age_clock: business
    minimum_age_hours: dict[Severity, MinimumAge] = Field(default_factory=_seed_002_ages)
    never_for: list[Severity] = Field(default_factory=lambda: [Severity.SEV1])
    levels: dict[int, Level] = Field(default_factory=dict)
    refusal: Refusal = Field(default_factory=Refusal)
    review: ReviewConfig | None = None  # the Escalation Manager review clock

    @field_validator("levels")
    @classmethod
    def _levels(cls, levels: dict[int, Level]) -> dict[int, Level]:
        if levels and sorted(levels) != [1, 2, 3, 4]:
            raise ValueError(f"give levels 1, 2, 3 and 4 (got {sorted(levels)})")
        return levels

    def audience(self, level: int) -> list[str]:
        """Everyone notified at ``level``: its own audience and all lower levels' (seed 002)."""
        seen: list[str] = []
        for number in range(1, level + 1):
            entry = self.levels.get(number)
            seen += [who for who in (entry.audience if entry else []) if who not in seen]
        return seen


def case_start(escalation: Escalation) -> datetime:
    """When the case was created: in its origin tracker, else when tiersync first saw it."""
    return escalation.case_created_at or escalation.created_at


def origin_age_step(before: Escalation | None, escalation: Escalation,
                    observation: Observation | None) -> Decision:
    """The case age counts from the origin record's creation: a mirror's creation time (a Jira
    issue's ``created``) never replaces it."""
    origin = escalation.origin()
    if (before is None or observation is None or origin is None
            or observation.tracker == origin.tracker
            or "case_created_at" not in observation.changes
            or escalation.case_created_at == before.case_created_at):
        return Decision()
    return Decision(changes={"case_created_at": before.case_created_at},
                    hits=[RuleHit("escalation", "case_age.origin_only",
                                  f"{observation.tracker}'s creation time is not the case's")])


def age_seconds(escalation: Escalation, config: ManagementEscalation,
                calendar: BusinessCalendar | None, at: datetime) -> float:
    if config.age_clock == "business" and calendar is not None:
        return calendar.business_seconds(case_start(escalation), at)
    return (at - case_start(escalation)).total_seconds()


def eligible_at(escalation: Escalation, config: ManagementEscalation,
                calendar: BusinessCalendar | None, hours: float) -> datetime:
    if config.age_clock == "business" and calendar is not None:
        return calendar.add(case_start(escalation), hours * 3600)
    return case_start(escalation) + timedelta(hours=hours)


class Verdict(_Strict):
    refusal: str | None = None  # None: accepted
    rule: str
    detail: str
    values: dict[str, str] = Field(default_factory=dict)


def is_request(escalation: Escalation, observation: Observation | None) -> bool:
    """A tracker just set the request field to a level (1-4): a new request to answer."""
    return (observation is not None and "escalation_requested" in observation.changes
            and escalation.escalation_requested > 0)


def escalation_step(escalation: Escalation, config: ManagementEscalation,
                    premium_plans: list[SupportPlan], calendar: BusinessCalendar | None,
                    observation: Observation | None, at: datetime,
                    directory: Directory = NO_DIRECTORY) -> Decision:
    if not is_request(escalation, observation):
        return Decision()
    verdict = assess(escalation, config, premium_plans, calendar, at)
    if verdict.refusal is not None:
        return _refuse(escalation, config, verdict, at)
    return _accept(escalation, config, verdict, at, directory)


def assess(escalation: Escalation, config: ManagementEscalation,
           premium_plans: list[SupportPlan], calendar: BusinessCalendar | None,
           at: datetime) -> Verdict:
    """Whether a request made at ``at`` is accepted, with the rule and the reply's values."""
    values = {"state": escalation.state.value, "level": str(escalation.escalation_level + 1)}
    if escalation.escalation_level >= TOP_LEVEL:
        return Verdict(refusal="top", rule="top", detail=f"level {TOP_LEVEL} is the top",
                       values=values)
    if not escalation.state.is_open:
        return Verdict(refusal="closed", rule="closed", detail="case is not open", values=values)
    severity = escalation.severity
    if severity is None:
        return Verdict(refusal="no_severity", rule="no_severity", detail="no severity",
                       values=values)
    values["severity"] = str(severity.value)
    if severity in config.never_for or severity not in config.minimum_age_hours:
        return Verdict(refusal="outage", rule="outage", detail=f"severity {severity.value}",
                       values=values)
    premium = escalation.support_plan in premium_plans
    ages = config.minimum_age_hours[severity]
    hours = ages.premium if premium else ages.standard
    age = age_seconds(escalation, config, calendar, at)
    values.update(plan_class="premium" if premium else "non-premium", minimum_hours=f"{hours:g}",
                  eligible_at=when_text(eligible_at(escalation, config, calendar, hours), calendar))
    detail = (f"severity {severity.value}, {values['plan_class']}: minimum {hours:g} h, "
              f"age {age / 3600:.2f} h ({config.age_clock} clock)")
    if age < hours * 3600:
        return Verdict(refusal="too_early", rule="too_early", detail=detail, values=values)
    return Verdict(rule=f"level_{escalation.escalation_level + 1}", detail=detail, values=values)


def _refuse(escalation: Escalation, config: ManagementEscalation, verdict: Verdict,
            at: datetime) -> Decision:
    template = getattr(config.refusal, verdict.refusal)
    body = template.format(**{name: verdict.values.get(name, "-") for name in REFUSAL_FIELDS})
    requested = escalation.escalation_requested
    outcome = "top" if verdict.refusal == "top" else "refused"
    rule = "top" if outcome == "top" else f"refused.{verdict.rule}"
    note = Note(target=config.refusal.target, body=body, public=config.refusal.public,
                rule=f"escalation.{rule}", key=f"escalation-refused:{requested}:{at.isoformat()}")
    answer = _answer(escalation, escalation.escalation_level, outcome, verdict,
                     f"{verdict.detail}: {body}", at)
    return Decision(changes={"escalation_requested": 0, "escalation_history": answer},
                    notes=[note], hits=[RuleHit("escalation", rule, verdict.detail)])


def _answer(escalation: Escalation, to_level: int, outcome: str, verdict: Verdict, reason: str,
            at: datetime) -> list[EscalationAnswer]:
    entry = EscalationAnswer(at=at, requested=escalation.escalation_requested,
                             from_level=escalation.escalation_level, to_level=to_level,
                             outcome=outcome, rule=verdict.rule, reason=reason)
    return [*escalation.escalation_history, entry]


def _accept(escalation: Escalation, config: ManagementEscalation, verdict: Verdict,
            at: datetime, directory: Directory) -> Decision:
    level = escalation.escalation_level + 1
    audience = config.audience(level)
    target = config.levels[level].notify if level in config.levels else "all"
    who = ", ".join(audience) if audience else "the escalation managers"
    people = notify_list(directory, audience, escalation)
    note = Note(target=target, rule=f"escalation.level_{level}", key=f"escalation-level:{level}",
                body=f"Management escalation accepted: level {level}. Notified: {who}.",
                notify=people)
    detail = f"level {escalation.escalation_level} -> {level}; {verdict.detail}"
    if escalation.escalation_requested > level:
        detail += f" (requested {escalation.escalation_requested}; one level per request)"
    answer = _answer(escalation, level, "accepted", verdict, detail, at)
    return Decision(changes={"escalation_level": level, "escalation_requested": 0,
                             "escalation_history": answer},
                    notes=[note], hits=[RuleHit("escalation", f"level_{level}", detail)])
