"""The policy file (``mappings/policy.yaml``): one validated model for every rule family.

Errors name the file, the dotted key path and the bad value, like the mapping files. Names that
refer to other parts of the file (a calendar named by an SLA policy) are checked after the
structure, with the same kind of message.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigError
from core.mapping import format_validation_errors, load_yaml
from core.model import SupportPlan
from core.policy.abuse import PriorityAbuseConfig
from core.policy.basic import Routing
from core.policy.calendar import BusinessCalendar, CalendarConfig
from core.policy.escalation import ManagementEscalation
from core.policy.people import PeopleConfig
from core.policy.queue import QueueRankConfig
from core.policy.sla_config import SlaConfig
from core.policy.tiers import TiersConfig
from core.policy.validation import ValidationConfig


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    premium_plans: list[SupportPlan] = Field(default_factory=lambda: [SupportPlan.ENTERPRISE])
    announce_state_changes: bool = True
    calendars: dict[str, CalendarConfig] = Field(default_factory=dict)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    routing: Routing = Field(default_factory=Routing)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    management_escalation: ManagementEscalation = Field(default_factory=ManagementEscalation)
    tiers: TiersConfig = Field(default_factory=TiersConfig)
    people: PeopleConfig = Field(default_factory=PeopleConfig)
    queue_rank: QueueRankConfig | None = None
    priority_abuse: PriorityAbuseConfig | None = None

    def build_calendars(self) -> dict[str, BusinessCalendar]:
        return {name: BusinessCalendar.from_config(name, cal) for name, cal in self.calendars.items()}


def reference_problems(config: PolicyFile) -> list[str]:
    """Cross-references the structure alone cannot check: (key path, problem) lines."""
    known = sorted(config.calendars)
    problems = []

    def need_calendar(path: str, name: str | None) -> None:
        if name not in config.calendars:
            problems.append(f"{path}: unknown calendar (value: {name!r}); known calendars: {known}")

    names = [policy.name for policy in config.sla.policies]
    for index, policy in enumerate(config.sla.policies):
        need_calendar(f"sla.policies.{index}.calendar", policy.calendar)
        if names.count(policy.name) > 1:
            problems.append(f"sla.policies.{index}.name: duplicate SLA policy name "
                            f"(value: {policy.name!r})")
    if config.tiers.daily_update is not None:
        need_calendar("tiers.daily_update.calendar", config.tiers.daily_update.calendar)
    escalation = config.management_escalation
    if escalation.age_clock == "business":
        need_calendar("management_escalation.calendar", escalation.calendar)
    if escalation.review is not None:
        need_calendar("management_escalation.review.calendar", escalation.review.calendar)
    return problems


def parse_policy(data: Any, source: str = "<memory>") -> PolicyFile:
    """Validate policy data; raise ConfigError with one line per problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (top level): expected a mapping of keys, "
                          f"got {type(data).__name__}")
    try:
        config = PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_errors(source, exc)) from None
    problems = reference_problems(config)
    if problems:
        raise ConfigError([f"{source}: {problem}" for problem in problems])
    return config


def read_policy_file(path: Path) -> PolicyFile:
    return parse_policy(load_yaml(Path(path)), str(path))
