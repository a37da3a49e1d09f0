"""Routing (seeds 000, 003): ordered rules pick queue, tier, assignee group and mirror trackers.

The first rule whose ``when`` holds wins; ``default`` catches the rest. The rule's name is
recorded on the escalation (``routing_rule``). A rule's ``mirror_to`` lists the connectors whose
tracker gets a record of the escalation, and ``fields`` gives extra native fields per connector
for that create (``{"System.AreaPath": ...}`` for Azure DevOps, ``{"project": "ENG"}`` for Jira).
With ``reroute_on_change`` an open escalation whose classification now matches another rule
(say, it was flagged as a security incident) moves to that rule's queue and tier.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.decision import CreateMirror, Decision, Note, RuleHit
from core.model import Escalation, SupportTier
from core.policy.conditions import When, describe, matches


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoutingRule(_Strict):
    name: str
    when: When = Field(default_factory=dict)
    queue: str | None = None
    tier: SupportTier | None = None
    assignee_group: str | None = None
    mirror_to: list[str] = Field(default_factory=list)  # connector names to create records in
    fields: dict[str, dict[str, Any]] = Field(default_factory=dict)  # connector -> native fields

    @model_validator(mode="after")
    def _fields_for_mirrors(self) -> "RoutingRule":
        unknown = sorted(set(self.fields) - set(self.mirror_to))
        if unknown:
            raise ValueError(f"fields given for {unknown}, which are not in mirror_to "
                             f"{self.mirror_to}")
        return self

    def matches(self, escalation: Escalation) -> bool:
        return matches(self.when, escalation)

    def summary(self) -> str:
        tier = self.tier.value if self.tier else None
        return (f"queue={self.queue} tier={tier} group={self.assignee_group} "
                f"mirror_to={self.mirror_to}")


class Routing(_Strict):
    rules: list[RoutingRule] = Field(default_factory=list)
    default: RoutingRule | None = None
    reroute_on_change: bool = True

    @model_validator(mode="after")
    def _unique_names(self) -> "Routing":
        names = [rule.name for rule in self.all_rules()]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"routing rule names must be unique: {duplicates}")
        return self

    def all_rules(self) -> list[RoutingRule]:
        return self.rules + ([self.default] if self.default else [])

    def route(self, escalation: Escalation) -> RoutingRule | None:
        return next((r for r in self.rules if r.matches(escalation)), self.default)

    def named(self, name: str | None) -> RoutingRule | None:
        return next((r for r in self.all_rules() if r.name == name), None)

    def explain(self, escalation: Escalation) -> list[str]:
        lines, chosen = [], self.route(escalation)
        for rule in self.rules:
            verdict = "match" if rule.matches(escalation) else "no match"
            lines.append(f"routing: rule {rule.name!r} ({describe(rule.when)}): {verdict}")
        if self.default:
            lines.append(f"routing: default {self.default.name!r}")
        if chosen:
            lines.append(f"routing: first match wins -> {chosen.name!r}: {chosen.summary()}")
        return lines


def route_step(routing: Routing, escalation: Escalation, at: datetime) -> Decision:
    """Route an open escalation that is unrouted, or whose matching rule changed."""
    if not escalation.state.is_open:
        return Decision()
    current = escalation.routing_rule
    if current is not None and not routing.reroute_on_change:
        return Decision()
    rule = routing.route(escalation)
    if rule is not None and rule.name == current and escalation.routed_at is None:
        # routed before routed_at existed: its clock starts when the escalation was created
        return Decision(changes={"routed_at": escalation.created_at},
                        hits=[RuleHit("routing", "routed_at", "taken from created_at")])
    if rule is None or rule.name == current:
        return Decision()
    decision = _apply_rule(rule, escalation)
    if escalation.routed_at is None:
        decision.changes["routed_at"] = at
    if current is not None:
        decision.hits.append(RuleHit("routing", "reroute", f"{current} -> {rule.name}"))
        decision.notes.append(Note(
            target="all", rule=f"routing.{rule.name}", key=f"rerouted:{rule.name}:{at.isoformat()}",
            body=f"Re-routed from rule {current} to {rule.name}: queue {rule.queue}, "
                 f"tier {rule.tier.value if rule.tier else escalation.tier.value}."))
    return decision


def _apply_rule(rule: RoutingRule, escalation: Escalation) -> Decision:
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
                    hits=[RuleHit("routing", rule.name, rule.summary())])
