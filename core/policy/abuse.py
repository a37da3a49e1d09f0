"""Priority abuse (seed 003): "Our support team will flag any abuse to the Priority designation".

A rule's ``when`` (say urgent or high customer priority on a severity 3-4 case) flags an open
case once: ``priority_abuse`` holds the rule's name and an internal note goes to ``note_target``.
A flag stays (the counters count abuse, not current priorities). ``counters`` counts flagged
cases per requester and per partner; ``share`` also flags requesters whose share of cases with
one of ``share.priorities`` is above ``share.above`` once they have ``share.min_cases`` cases.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from core.decision import Decision, Note, RuleHit
from core.model import CustomerPriority, Escalation
from core.policy.conditions import When, describe, matches


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AbuseRule(_Strict):
    name: str
    when: When


class ShareRule(_Strict):
    priorities: list[CustomerPriority] = Field(default_factory=lambda: [CustomerPriority.URGENT])
    above: float = Field(default=0.5, gt=0, le=1)
    min_cases: PositiveInt = 4


class PriorityAbuseConfig(_Strict):
    rules: list[AbuseRule] = Field(default_factory=list)
    share: ShareRule | None = None
    note_target: str = "all"
    note: str = ("Priority check: the customer priority {priority} does not fit this case "
                 "({rule}: {condition}). Support flags misuse of the Urgent and High priorities "
                 "(seed 003); please review the priority with the requester.")


def abuse_step(escalation: Escalation, config: PriorityAbuseConfig | None) -> Decision:
    if config is None or escalation.priority_abuse or not escalation.state.is_open:
        return Decision()
    rule = next((r for r in config.rules if matches(r.when, escalation)), None)
    if rule is None:
        return Decision()
    priority = escalation.customer_priority.value if escalation.customer_priority else "-"
    body = config.note.format(priority=priority, rule=rule.name, condition=describe(rule.when))
    note = Note(target=config.note_target, rule=f"priority_abuse.{rule.name}",
                key=f"priority-abuse:{rule.name}", body=body)
    return Decision(changes={"priority_abuse": rule.name}, notes=[note],
                    hits=[RuleHit("priority_abuse", rule.name, describe(rule.when))])


def counters(escalations: Iterable[Escalation],
             config: PriorityAbuseConfig | None) -> dict[str, Any]:
    """Flagged cases per requester and partner, and requesters over the urgent-share limit."""
    items = list(escalations)
    flagged = [e for e in items if e.priority_abuse]
    requesters = Counter(e.requester_email or "-" for e in flagged)
    partners = Counter(e.partner_name or "-" for e in flagged)
    return {"requesters": dict(requesters.most_common()), "partners": dict(partners.most_common()),
            "share": _share(items, config.share if config else None)}


def _share(items: list[Escalation], rule: ShareRule | None) -> dict[str, float]:
    if rule is None:
        return {}
    total, high = Counter(), Counter()
    for item in items:
        who = item.requester_email or "-"
        total[who] += 1
        high[who] += item.customer_priority in rule.priorities
    return {who: round(high[who] / n, 2) for who, n in total.items()
            if n >= rule.min_cases and high[who] / n > rule.above}
