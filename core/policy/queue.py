"""Queue order (seeds 002, 003): a rank from customer priority x support plan x age.

Seed 002: a high customer priority "will push it up the list of issues based on your support
level"; seed 003: "Tickets are worked according to priority in the order in which they are
received". The score is ``priority weight x plan weight x (1 + age weight x age)``, the age in
whole steps of ``age_step_hours`` since the case was created, capped at ``max_age_hours`` (so
the rank changes a few times, not on every cycle). ``queue_rank`` is ``round(scale / score)``:
lower is worked first, like Azure DevOps ``StackRank``. A missing priority counts as normal
(seed 003's default), a missing plan as Professional (seed 003's default option).
"""
from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat

from core.decision import Decision, RuleHit
from core.model import CustomerPriority, Escalation, SupportPlan
from core.policy.escalation import case_start


def _priorities() -> dict[CustomerPriority, float]:
    return {CustomerPriority.LOW: 1, CustomerPriority.NORMAL: 2, CustomerPriority.HIGH: 4,
            CustomerPriority.URGENT: 8}


def _plans() -> dict[SupportPlan, float]:
    return {SupportPlan.DEVELOPER: 1, SupportPlan.PROFESSIONAL: 2, SupportPlan.ENTERPRISE: 3}


class QueueRankConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority_weights: dict[CustomerPriority, PositiveFloat] = Field(default_factory=_priorities)
    plan_weights: dict[SupportPlan, PositiveFloat] = Field(default_factory=_plans)
    age_weight_per_hour: NonNegativeFloat = 0.02
    age_step_hours: PositiveFloat = 8
    max_age_hours: PositiveFloat = 72
    scale: PositiveFloat = 100_000


def age_hours(escalation: Escalation, config: QueueRankConfig, now: datetime) -> float:
    """The case's age in whole steps, in hours, capped."""
    hours = max(0.0, (now - case_start(escalation)).total_seconds() / 3600)
    stepped = math.floor(hours / config.age_step_hours) * config.age_step_hours
    return min(stepped, config.max_age_hours)


def score(escalation: Escalation, config: QueueRankConfig, now: datetime) -> float:
    priority = escalation.customer_priority or CustomerPriority.NORMAL
    plan = escalation.support_plan or SupportPlan.PROFESSIONAL
    weight = config.priority_weights.get(priority, 1) * config.plan_weights.get(plan, 1)
    return weight * (1 + config.age_weight_per_hour * age_hours(escalation, config, now))


def queue_rank(escalation: Escalation, config: QueueRankConfig, now: datetime) -> int:
    return max(1, round(config.scale / score(escalation, config, now)))


def rank_step(escalation: Escalation, config: QueueRankConfig | None, now: datetime) -> Decision:
    """Keep ``queue_rank`` current while the escalation is open in a queue (routed)."""
    if config is None or not escalation.state.is_open or escalation.routing_rule is None:
        return Decision()
    rank = queue_rank(escalation, config, now)
    if rank == escalation.queue_rank:
        return Decision()
    detail = (f"{(escalation.customer_priority or CustomerPriority.NORMAL).value} x "
              f"{(escalation.support_plan or SupportPlan.PROFESSIONAL).value} x age "
              f"{age_hours(escalation, config, now):g} h -> {rank}")
    return Decision(changes={"queue_rank": rank}, hits=[RuleHit("queue", "rank", detail)])


def explain(escalation: Escalation, config: QueueRankConfig | None, now: datetime) -> list[str]:
    if config is None:
        return ["queue: no queue_rank section"]
    return [f"queue: score {score(escalation, config, now):.2f} (priority x plan x age "
            f"{age_hours(escalation, config, now):g} h) -> rank "
            f"{queue_rank(escalation, config, now)} (lower is worked first)"]
