"""Validation and entitlement (seeds 001, 003).

Seed 001: "validating who is the requester and if this one is entitled to receive support", then
"all the mandatory information"; "if in one of the two ... there is a failure, the support
request will be closed and it will be explained why support can't be provided". Both run at
intake: while the escalation is ``new`` or not yet routed. The scope check runs in every open
state, because seed 001 also closes a case when investigation finds it is on-premise and the
partner has no on-premise add-on. Seed 003: partners need Professional or Enterprise support, and
"any support request from another email address is not converted into a ticket": with
``unregistered: not_converted`` (the default) an unregistered sender's record is left alone (no
routing, no mirror, no reply; ``not_converted_reason`` says why, the audit log records it, and
``tiersync status --not-converted`` lists it); once the address is registered, the record's next
change converts it. ``formats`` checks field values against patterns at intake (seed 000's SR
number: 14 or 15 digits, since the seed's text says 15 and its example has 14).
"""
from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.decision import Decision, Note, RuleHit
from core.model import Escalation, Scope, State, SupportPlan
from core.policy.conditions import When, describe, matches


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MandatoryFields(_Strict):
    """Fields that must be filled when ``when`` holds (every matching set applies)."""

    name: str
    when: When = Field(default_factory=dict)
    fields: list[str] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _model_fields(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in Escalation.model_fields]
        if unknown:
            raise ValueError(f"not fields of the escalation model: {unknown}")
        return names


class PartnerContract(_Strict):
    plan: SupportPlan | None = None  # the contracted plan; fills a missing support_plan
    addons: list[str] = Field(default_factory=list)  # e.g. on_premise (seed 001)


class FieldFormat(_Strict):
    """A value the field must match (``re.fullmatch``), with the reason given on a mismatch."""

    pattern: str
    description: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return pattern


def _default_formats() -> dict[str, FieldFormat]:
    return {"sr_number": FieldFormat(pattern=r"\d{14,15}", description="14 or 15 digits")}


class Entitlement(_Strict):
    unregistered: Literal["not_converted", "reject"] = "not_converted"
    plans: list[SupportPlan] = Field(
        default_factory=lambda: [SupportPlan.PROFESSIONAL, SupportPlan.ENTERPRISE])
    requesters: list[str] = Field(default_factory=list)  # glob patterns; empty: not checked
    partners: dict[str, PartnerContract] = Field(default_factory=dict)  # empty: not checked
    scope_addons: dict[Scope, str] = Field(
        default_factory=lambda: {Scope.ON_PREMISE: "on_premise"})

    def contract(self, partner: str | None) -> PartnerContract | None:
        if not partner:
            return None
        wanted = partner.casefold()
        return next((c for name, c in self.partners.items() if name.casefold() == wanted), None)


class ValidationConfig(_Strict):
    intake_states: list[State] = Field(default_factory=lambda: [State.NEW])
    mandatory: list[MandatoryFields] = Field(default_factory=list)
    formats: dict[str, FieldFormat] = Field(default_factory=_default_formats)
    entitlement: Entitlement = Field(default_factory=Entitlement)
    note_public: bool = True  # the reason goes to the requester (seed 001)

    @field_validator("formats")
    @classmethod
    def _format_fields(cls, formats: dict[str, FieldFormat]) -> dict[str, FieldFormat]:
        unknown = [name for name in formats if name not in Escalation.model_fields]
        if unknown:
            raise ValueError(f"not fields of the escalation model: {unknown}")
        return formats


@dataclass(frozen=True)
class Failure:
    rule: str
    reason: str


def _empty(value: object) -> bool:
    return value is None or value == "" or value == []


def in_intake(escalation: Escalation, config: ValidationConfig) -> bool:
    return escalation.state.is_open and (
        escalation.state in config.intake_states or escalation.routing_rule is None)


def mandatory_failures(escalation: Escalation, config: ValidationConfig) -> list[Failure]:
    failures = []
    for rule in config.mandatory:
        if not matches(rule.when, escalation):
            continue
        missing = [name for name in rule.fields if _empty(getattr(escalation, name))]
        if missing:
            failures.append(Failure(f"mandatory.{rule.name}",
                                    f"mandatory fields missing: {', '.join(missing)}"))
    return failures


def format_failures(escalation: Escalation, config: ValidationConfig) -> list[Failure]:
    failures = []
    for name, rule in config.formats.items():
        value = getattr(escalation, name)
        if not _empty(value) and re.fullmatch(rule.pattern, str(value).strip()) is None:
            failures.append(Failure(f"format.{name}", f"{name} {str(value)!r} is not valid: "
                                                      f"expected {rule.description}"))
    return failures


def requester_failure(escalation: Escalation, config: Entitlement) -> Failure | None:
    email = escalation.requester_email
    if config.requesters and email and not any(
            fnmatch.fnmatchcase(email.casefold(), p.casefold()) for p in config.requesters):
        return Failure("entitlement.requester",
                       f"the requester address {email} is not registered for support")
    return None


def entitlement_failures(escalation: Escalation, config: Entitlement) -> list[Failure]:
    failures = []
    unregistered = requester_failure(escalation, config)
    if unregistered is not None:
        failures.append(unregistered)
    contract = config.contract(escalation.partner_name)
    if config.partners and escalation.partner_name and contract is None:
        failures.append(Failure("entitlement.partner",
                                f"partner {escalation.partner_name} has no support contract"))
    plan = escalation.support_plan
    if contract and contract.plan and plan and plan != contract.plan:
        failures.append(Failure("entitlement.contract",
                                f"support plan {plan.value} is not the partner's contracted plan "
                                f"{contract.plan.value}"))
    effective = plan or (contract.plan if contract else None)
    if effective and effective not in config.plans:
        allowed = ", ".join(p.value for p in config.plans)
        failures.append(Failure("entitlement.plan",
                                f"the {effective.value} support plan is not entitled to partner "
                                f"support (needs one of: {allowed})"))
    return failures


def scope_failures(escalation: Escalation, config: Entitlement) -> list[Failure]:
    required = config.scope_addons.get(escalation.scope) if escalation.scope else None
    if not required:
        return []
    contract = config.contract(escalation.partner_name)
    owned = {a.casefold() for a in escalation.addons + (contract.addons if contract else [])}
    if required.casefold() in owned:
        return []
    return [Failure("entitlement.scope",
                    f"the issue is {escalation.scope.value} and the {required} add-on has not "
                    f"been purchased")]


def failures(escalation: Escalation, config: ValidationConfig) -> list[Failure]:
    """Every validation failure that applies to the escalation in its current state."""
    if not escalation.state.is_open:
        return []
    found: list[Failure] = []
    if in_intake(escalation, config):
        found += entitlement_failures(escalation, config.entitlement)
        found += mandatory_failures(escalation, config)
        found += format_failures(escalation, config)
    return found + scope_failures(escalation, config.entitlement)


def with_contract_plan(escalation: Escalation, config: ValidationConfig) -> Escalation:
    """The escalation with a missing support plan taken from the partner's contract (intake)."""
    contract = config.entitlement.contract(escalation.partner_name)
    if not (in_intake(escalation, config) and contract and contract.plan
            and escalation.support_plan is None):
        return escalation
    return escalation.model_copy(update={"support_plan": contract.plan})


def not_converted_step(escalation: Escalation, config: ValidationConfig) -> Decision | None:
    """Seed 003: an unregistered sender is not converted; a registered one (again) is."""
    if config.entitlement.unregistered != "not_converted":
        return None
    if escalation.not_converted_reason and escalation.state is State.REJECTED:
        if requester_failure(escalation, config.entitlement) is not None:
            return Decision()
        return Decision(changes={"state": State.NEW, "not_converted_reason": None},
                        hits=[RuleHit("validation", "converted", "the requester is registered")])
    if not in_intake(escalation, config) or escalation.routing_rule is not None:
        return None  # converted before (it has mirrors): a failure now rejects it with notes
    failure = requester_failure(escalation, config.entitlement)
    if failure is None:
        return None
    return Decision(changes={"state": State.REJECTED, "not_converted_reason": failure.reason},
                    hits=[RuleHit("validation", "not_converted", failure.reason)])


def validate_step(escalation: Escalation, config: ValidationConfig) -> Decision:
    early = not_converted_step(escalation, config)
    if early is not None and (early.changes.get("state") is State.REJECTED or not early.changes):
        return early
    if early is not None:
        escalation = escalation.model_copy(update=early.changes)
    decision = _validate(escalation, config)
    return early.merge(decision) if early is not None else decision


def _validate(escalation: Escalation, config: ValidationConfig) -> Decision:
    filled = with_contract_plan(escalation, config)
    found = failures(filled, config)
    if found:
        return reject(escalation, found, config.note_public)
    decision = Decision()
    if filled.support_plan != escalation.support_plan:
        decision.changes["support_plan"] = filled.support_plan
        decision.hits.append(RuleHit("validation", "entitlement.contract_plan",
                                     f"support plan {filled.support_plan.value} from the contract"))
    if in_intake(escalation, config) and escalation.rejection_reason:
        decision.changes["rejection_reason"] = None
    return decision


def reject(escalation: Escalation, found: list[Failure], public: bool) -> Decision:
    reason = "; ".join(failure.reason for failure in found)
    changes = {"state": State.REJECTED, "rejection_reason": reason}
    if not escalation.close_reason:
        changes["close_reason"] = f"Rejected: {reason}"
    digest = hashlib.sha1(reason.encode("utf-8")).hexdigest()[:12]
    notes = [Note(target="origin", rule=found[0].rule, public=public, key=f"rejected:{digest}",
                  body=f"Support can't be provided for this request, so it has been closed: "
                       f"{reason}.")]
    if any(link.role.value == "mirror" for link in escalation.links):
        notes.append(Note(target="mirrors", rule=found[0].rule, key=f"rejected:{digest}",
                          body=f"Closed by validation: {reason}."))
    hits = [RuleHit("validation", failure.rule, failure.reason) for failure in found]
    return Decision(changes=changes, notes=notes, hits=hits)


def explain(escalation: Escalation, config: ValidationConfig) -> list[str]:
    if not escalation.state.is_open:
        return [f"validation: skipped ({escalation.state.value})"]
    phase = "intake checks and scope" if in_intake(escalation, config) else "scope check only"
    lines = [f"validation: {phase}"]
    for rule in config.mandatory:
        verdict = "applies" if matches(rule.when, escalation) else "does not apply"
        lines.append(f"validation: mandatory set {rule.name!r} ({describe(rule.when)}): {verdict}")
    found = failures(with_contract_plan(escalation, config), config)
    lines += [f"validation: FAIL {f.rule}: {f.reason}" for f in found] or ["validation: passed"]
    return lines
