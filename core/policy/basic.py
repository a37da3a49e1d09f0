"""The spine's policy: route a new escalation to a mirror tracker and announce state changes.

The full policy (validation, SLA clocks, management escalation, tiers) builds on this file's
routing table; see ``mappings/policy.yaml``.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.decision import CreateMirror, Decision, Note, Observation, RuleHit
from core.errors import ConfigError
from core.mapping import format_validation_errors, load_yaml
from core.model import Escalation, SupportTier


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoutingRule(_Strict):
    name: str
    when: dict[str, Any] = Field(default_factory=dict)  # model field -> value or list of values
    queue: str | None = None
    tier: SupportTier | None = None
    assignee_group: str | None = None
    mirror_to: list[str] = Field(default_factory=list)  # connector names to create records in
    fields: dict[str, dict[str, Any]] = Field(default_factory=dict)  # connector -> native fields

    def matches(self, escalation: Escalation) -> bool:
        for name, expected in self.when.items():
            actual = getattr(escalation, name, None)
            actual = getattr(actual, "value", actual)
            options = expected if isinstance(expected, list) else [expected]
            if actual not in options:
                return False
        return True


class Routing(_Strict):
    rules: list[RoutingRule] = Field(default_factory=list)
    default: RoutingRule | None = None

    def route(self, escalation: Escalation) -> RoutingRule | None:
        return next((r for r in self.rules if r.matches(escalation)), self.default)


class PolicyFile(_Strict):
    routing: Routing = Field(default_factory=Routing)
    announce_state_changes: bool = True


class BasicPolicy:
    def __init__(self, config: PolicyFile):
        self.config = config

    def decide(self, before: Escalation | None, after: Escalation,
               observation: Observation | None, now: datetime) -> Decision:
        decision = Decision()
        if after.state.is_open and after.routing_rule is None:
            decision.merge(self._route(after))
        if observation and "state" in observation.changes and before is not None \
                and before.state != after.state and self.config.announce_state_changes:
            decision.notes.append(Note(
                target="others", rule="sync.announce_state",
                body=f"State changed from {before.state.value} to {after.state.value} "
                     f"in {observation.tracker}.",
                key=f"state:{after.version}"))
        return decision

    def _route(self, escalation: Escalation) -> Decision:
        rule = self.config.routing.route(escalation)
        if rule is None:
            return Decision()
        changes: dict[str, Any] = {"routing_rule": rule.name}
        if rule.queue:
            changes["queue"] = rule.queue
        if rule.tier:
            changes["tier"] = rule.tier
        if rule.assignee_group:
            changes["assignee_group"] = rule.assignee_group
        mirrors = [CreateMirror(tracker=t, rule=f"routing.{rule.name}", fields=rule.fields.get(t, {}))
                   for t in rule.mirror_to if escalation.link_for(t) is None]
        return Decision(changes=changes, mirrors=mirrors,
                        hits=[RuleHit("routing", rule.name, f"queue={rule.queue} tier={rule.tier}")])


def load_policy(path: Path) -> BasicPolicy:
    data = load_yaml(path) or {}
    try:
        return BasicPolicy(PolicyFile.model_validate(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_errors(str(path), exc)) from None
