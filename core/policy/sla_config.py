"""SLA settings (seeds 000, 002, 003): metrics, clock rules, and target tables per policy.

A metric's clock starts either when the escalation is routed to its tier-2 queue (``routed``;
the acknowledgement clock) or when tier 2 starts working on it (``work_started``; seed 000:
"the status is updated to actively working. This is when the SLA starts"). It is met the first
time the escalation reaches one of its ``met_when`` states and never reset, so only the first
solution counts (seed 000). ``work_started`` clocks pause in the ``pause_when`` states.
Targets are business hours of the policy's calendar, by severity x support plan.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator

from core.model import Escalation, Severity, SlaMetricName, State, SupportPlan
from core.policy.conditions import When, matches


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricRule(_Strict):
    starts: Literal["routed", "work_started"] = "work_started"
    met_when: list[State] = Field(min_length=1)


def _default_metrics() -> dict[SlaMetricName, MetricRule]:
    return {
        SlaMetricName.ACKNOWLEDGEMENT: MetricRule(
            starts="routed", met_when=[State.ACTIVELY_WORKING, State.WAITING_ON_CUSTOMER,
                                       State.SOLUTION_PROPOSED]),
        SlaMetricName.FIRST_SOLUTION: MetricRule(met_when=[State.SOLUTION_PROPOSED, State.CLOSED]),
        SlaMetricName.CLOSE: MetricRule(met_when=[State.CLOSED]),
    }


class Targets(_Strict):
    """Business hours per metric; an absent metric has no SLA for this severity x plan."""

    acknowledgement: PositiveFloat | None = None
    first_solution: PositiveFloat | None = None
    close: PositiveFloat | None = None

    def hours(self, metric: SlaMetricName) -> float | None:
        return getattr(self, metric.value)


class SlaPolicy(_Strict):
    name: str
    when: When = Field(default_factory=dict)
    calendar: str
    targets: dict[Severity, dict[SupportPlan, Targets]]

    def target_seconds(self, escalation: Escalation, metric: SlaMetricName) -> float | None:
        if escalation.severity is None or escalation.support_plan is None:
            return None
        row = self.targets.get(escalation.severity, {}).get(escalation.support_plan)
        hours = row.hours(metric) if row else None
        return hours * 3600 if hours else None


class SlaConfig(_Strict):
    warning_at: float = Field(default=0.75, gt=0, lt=1)  # fraction of the target elapsed
    notify: str = "all"  # note target of warnings and breaches
    work_starts_when: list[State] = Field(
        default_factory=lambda: [State.ACTIVELY_WORKING, State.WAITING_ON_CUSTOMER,
                                 State.SOLUTION_PROPOSED])
    pause_when: list[State] = Field(default_factory=lambda: [State.WAITING_ON_CUSTOMER])
    metrics: dict[SlaMetricName, MetricRule] = Field(default_factory=_default_metrics)
    policies: list[SlaPolicy] = Field(default_factory=list)

    @field_validator("pause_when")
    @classmethod
    def _open_states(cls, states: list[State]) -> list[State]:
        closed = [s.value for s in states if not s.is_open]
        if closed:
            raise ValueError(f"a clock cannot pause in a closed state: {closed}")
        return states

    def select(self, escalation: Escalation) -> SlaPolicy | None:
        """The first SLA policy whose ``when`` holds."""
        return next((p for p in self.policies if matches(p.when, escalation)), None)
