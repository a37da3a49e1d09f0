"""Tiers and ownership (seeds 000, 003, 004).

- The tier holding the case: the routing rule's tier (L2 by default, L3 for security SMEs), or
  the tier of ``state_tiers`` for the current state (seed 000: "solution provided ... assigned
  back to the original owner", tier 1).
- The original owner (the tier 1 agent who escalated) is recorded when the escalation is routed.
  "Solution proposed" assigns the case back to them with a note; "not resolved" (back from
  solution proposed to a working state) assigns it back to the agent who proposed the solution,
  with tier 1's feedback (seed 000 step 8).
- Tier 2 gives a daily update (seed 000 step 5): ``last_tier2_update_at`` is set whenever a
  tier-2 tracker reports a change or a comment (``tier2_trackers``; by default the trackers the
  routing rules mirror to, so it holds whichever side created the request: seed 000 step 1 has
  tier 2 create it); when an open case in a reminder state goes a
  business day without one, a reminder note is posted (key per business day).
"""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from core.decision import Decision, Note, Observation, RuleHit
from core.model import Escalation, State, SupportTier
from core.policy.basic import Routing
from core.policy.calendar import BusinessCalendar
from core.policy.text import duration_text

FEEDBACK_LIMIT = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DailyUpdate(_Strict):
    states: list[State] = Field(default_factory=lambda: [State.ACTIVELY_WORKING])
    after_business_hours: PositiveFloat = 8  # one business day of a 09:00-17:00 calendar
    calendar: str
    target: str = "mirrors"


class TiersConfig(_Strict):
    state_tiers: dict[State, SupportTier] = Field(
        default_factory=lambda: {State.SOLUTION_PROPOSED: SupportTier.L1})
    hand_back_state: State = State.SOLUTION_PROPOSED
    not_resolved_states: list[State] = Field(
        default_factory=lambda: [State.ACTIVELY_WORKING, State.WAITING_ON_INTERNAL])
    tier2_trackers: list[str] = Field(default_factory=list)  # empty: the routing mirrors' trackers
    daily_update: DailyUpdate | None = None


def tier2_set(config: TiersConfig, routing: Routing) -> frozenset[str]:
    """The tier 2 trackers: configured, else every tracker a routing rule mirrors to."""
    if config.tier2_trackers:
        return frozenset(config.tier2_trackers)
    return frozenset(t for rule in routing.all_rules() for t in rule.mirror_to)


def is_tier2(escalation: Escalation, tracker: str, tier2: frozenset[str]) -> bool:
    if tier2:
        return tracker in tier2
    origin = escalation.origin()  # nothing configured or routed anywhere: any non-origin tracker
    return origin is None or origin.tracker != tracker


def record_update_step(escalation: Escalation, observation: Observation | None,
                       tier2: frozenset[str], at: datetime) -> Decision:
    """Tier 2 touched the case: remember when (for the daily-update reminder)."""
    if observation is None or not (observation.changes or observation.new_comments):
        return Decision()
    if not is_tier2(escalation, observation.tracker, tier2):
        return Decision()
    last = escalation.last_tier2_update_at
    if last is not None and last >= at:
        return Decision()
    return Decision(changes={"last_tier2_update_at": at})


def held_tier(escalation: Escalation, config: TiersConfig, routing: Routing) -> SupportTier:
    if escalation.state in config.state_tiers:
        return config.state_tiers[escalation.state]
    rule = routing.named(escalation.routing_rule)
    return rule.tier if rule and rule.tier else escalation.tier


def ownership_step(before: Escalation | None, escalation: Escalation,
                   observation: Observation | None, config: TiersConfig, routing: Routing,
                   at: datetime) -> Decision:
    if not escalation.state.is_open or escalation.routing_rule is None:
        return Decision()
    decision = Decision()
    if escalation.original_owner is None and escalation.assignee:
        decision.changes["original_owner"] = escalation.assignee
        decision.hits.append(RuleHit("tiers", "original_owner", escalation.assignee))
    previous = before.state if before is not None else None
    if escalation.state is config.hand_back_state and previous is not config.hand_back_state:
        decision.merge(_hand_back(escalation, at))
    elif previous is config.hand_back_state and escalation.state in config.not_resolved_states:
        decision.merge(_not_resolved(escalation, observation, at))
    tier = held_tier(escalation, config, routing)
    if tier != escalation.tier:
        decision.changes["tier"] = tier
        decision.hits.append(RuleHit("tiers", "tier", f"{escalation.tier.value} -> {tier.value}"))
    return decision


def _hand_back(escalation: Escalation, at: datetime) -> Decision:
    owner = escalation.original_owner
    decision = Decision(hits=[RuleHit("tiers", "solution_proposed", f"back to {owner}")])
    agent = escalation.assignee
    if agent and agent != owner:
        decision.changes["solution_proposed_by"] = agent
    if owner and agent != owner:
        decision.changes["assignee"] = owner
    by = f" by {agent}" if agent and agent != owner else ""
    decision.notes.append(Note(
        target="origin", rule="tiers.solution_proposed", key=f"solution-proposed:{at.isoformat()}",
        body=f"A solution was proposed{by}; the case is assigned back to its original owner "
             f"{owner or '(unknown)'}. Confirm it with the customer and close the case, or set it "
             f"back to working with your feedback if it is not resolved."))
    return decision


def _not_resolved(escalation: Escalation, observation: Observation | None,
                  at: datetime) -> Decision:
    agent = escalation.solution_proposed_by
    decision = Decision(hits=[RuleHit("tiers", "not_resolved", f"back to {agent}")])
    if agent and escalation.assignee != agent:
        decision.changes["assignee"] = agent
    feedback = _feedback(observation)
    decision.notes.append(Note(
        target="others" if observation else "mirrors", rule="tiers.not_resolved",
        key=f"not-resolved:{at.isoformat()}",
        body=f"Not resolved: the proposed solution did not solve the issue; the case is assigned "
             f"back to {agent or 'the tier 2 queue'}. Feedback: {feedback}"))
    return decision


def _feedback(observation: Observation | None) -> str:
    comments = observation.new_comments if observation else ()
    text = "\n\n".join(comment.body.strip() for comment in comments if comment.body.strip())
    if not text:
        return "(no comment was added)"
    return text if len(text) <= FEEDBACK_LIMIT else text[:FEEDBACK_LIMIT - 1] + "…"


def _latest(*moments: datetime | None) -> datetime | None:
    return max((moment for moment in moments if moment is not None), default=None)


def daily_update_step(escalation: Escalation, config: TiersConfig,
                      calendars: dict[str, BusinessCalendar], now: datetime) -> Decision:
    daily = config.daily_update
    if daily is None or escalation.state not in daily.states:
        return Decision()
    updated = _latest(escalation.last_tier2_update_at, escalation.sla_clock.started_at)
    since = _latest(updated, escalation.update_reminded_at)
    if since is None:
        return Decision()
    calendar = calendars[daily.calendar]
    if calendar.business_seconds(since, now) < daily.after_business_hours * 3600:
        return Decision()
    quiet = duration_text(calendar.business_seconds(updated, now))
    day = calendar.local_date(now).isoformat()
    note = Note(target=daily.target, rule="tiers.daily_update", key=f"daily-update:{day}",
                body=f"Daily update due: no update from tier 2 for {quiet} of business time. "
                     f"Please add today's update to this case.")
    return Decision(changes={"update_reminded_at": now}, notes=[note],
                    hits=[RuleHit("tiers", "daily_update", f"quiet {quiet}")])
