"""Validation and entitlement (seeds 001, 003): failures reject with a reason to the origin."""
import pytest

from core.model import Link, LinkRole, State, SupportPlan
from tests.fixtures.policy.builders import Run, escalation, hit_names, policy_with, utc

T0 = utc(2024, 3, 5, 17)  # Tuesday 09:00 Pacific


def _registered(data):
    data["validation"]["entitlement"].update(
        requesters=["*@contoso.com", "noc@fabrikam.com"],
        partners={"Contoso Ltd": {"plan": "enterprise"},
                  "Fabrikam": {"plan": "professional", "addons": ["on_premise"]}})


REGISTERED = policy_with(_registered)
AZURE_ORIGIN = [Link(tracker="azure_devops", remote_id="7", role=LinkRole.ORIGIN)]


# fields of the escalation at intake, the rule expected to reject it (None: accepted)
INTAKE_CASES = [
    pytest.param({}, None, id="complete-and-entitled"),
    pytest.param({"sr_number": None}, "mandatory.escalation-basics", id="no-sr-number"),
    pytest.param({"severity": None, "offer_type": ""}, "mandatory.escalation-basics",
                 id="no-severity-or-offer-type"),
    pytest.param({"description": None}, "mandatory.zendesk-webform", id="zendesk-needs-description"),
    pytest.param({"scope": None}, "mandatory.zendesk-webform", id="zendesk-needs-scope"),
    pytest.param({"links": AZURE_ORIGIN, "description": None}, None,
                 id="engagement-item-needs-no-description"),
    pytest.param({"links": AZURE_ORIGIN, "contact_email": None}, "mandatory.engagement-item",
                 id="engagement-item-needs-contact-email"),
    pytest.param({"engagement_type": "Technical"}, "mandatory.offer-details",
                 id="technical-needs-seller-id"),
    pytest.param({"engagement_type": "technical", "seller_id": "S-1"}, None,
                 id="technical-with-seller-id"),
    pytest.param({"engagement_type": "Publishing", "seller_id": "S-1"}, "mandatory.publishing-offer",
                 id="publishing-needs-offer-ids"),
    pytest.param({"support_plan": "developer"}, "entitlement.plan", id="developer-plan"),
    pytest.param({"requester_email": "someone@gmail.com"}, "not_converted",
                 id="unregistered-requester-not-converted"),
    pytest.param({"requester_email": "NOC@Fabrikam.com", "partner_name": "fabrikam",
                  "support_plan": "professional"}, None, id="registered-case-insensitive"),
    pytest.param({"partner_name": "Initech"}, "entitlement.partner", id="partner-without-contract"),
    pytest.param({"support_plan": "professional"}, "entitlement.contract",
                 id="plan-not-the-contracted-one"),
    pytest.param({"scope": "on_premise"}, "entitlement.scope", id="on-premise-without-add-on"),
    pytest.param({"scope": "on_premise", "addons": ["On_Premise"]}, None,
                 id="on-premise-with-add-on-on-ticket"),
    pytest.param({"scope": "on_premise", "partner_name": "Fabrikam",
                  "support_plan": "professional"}, None, id="on-premise-add-on-in-contract"),
]


@pytest.mark.parametrize("fields, rule", INTAKE_CASES)
def test_intake(fields, rule):
    run = Run(escalation(**fields), REGISTERED)
    decision = run.open(T0)
    if rule is None:
        assert run.esc.state is State.NEW and run.esc.routing_rule is not None
        assert not [h for h in decision.hits if h.family == "validation"]
        return
    assert run.esc.state is State.REJECTED
    assert f"validation.{rule}" in hit_names(decision)
    assert run.esc.routing_rule is None and decision.mirrors == []
    assert run.esc.sla == {}


def test_rejection_writes_the_reason_back_to_the_origin():
    run = Run(escalation(support_plan="developer", description=None))
    decision = run.open(T0)
    reason = run.esc.rejection_reason
    assert "mandatory fields missing: description" in reason
    assert "the developer support plan is not entitled to partner support" in reason
    assert run.esc.close_reason == f"Rejected: {reason}"
    [note] = decision.notes
    assert note.target == "origin" and note.public is True
    assert reason in note.body and note.key.startswith("rejected:")


def test_contract_plan_fills_a_missing_plan():
    run = Run(escalation(support_plan=None), REGISTERED)
    decision = run.open(T0)
    assert run.esc.support_plan is SupportPlan.ENTERPRISE
    assert "validation.entitlement.contract_plan" in hit_names(decision)
    assert run.esc.state is State.NEW


def test_on_premise_found_during_investigation_closes_the_case():
    run = Run()
    run.open(T0)
    run.observe("azure_devops", utc(2024, 3, 5, 18), state="actively_working")
    decision = run.observe("zendesk", utc(2024, 3, 6, 18), scope="on_premise")
    assert run.esc.state is State.REJECTED
    assert "on_premise add-on has not been purchased" in run.esc.rejection_reason
    assert {note.target for note in decision.notes} == {"origin", "mirrors"}


def test_mandatory_fields_are_not_rechecked_while_tier_2_works():
    run = Run()
    run.open(T0)
    run.observe("azure_devops", utc(2024, 3, 5, 18), state="actively_working")
    run.observe("zendesk", utc(2024, 3, 5, 19), description=None, contact_name=None)
    assert run.esc.state is State.ACTIVELY_WORKING


def test_a_reopened_and_fixed_case_is_accepted():
    run = Run(escalation(sr_number=None))
    run.open(T0)
    assert run.esc.state is State.REJECTED
    run.observe("zendesk", utc(2024, 3, 5, 18), state="waiting_on_internal",
                sr_number="123456789012345")
    assert run.esc.state is State.WAITING_ON_INTERNAL
    assert run.esc.rejection_reason is None and run.esc.routing_rule == "tier2-default"


def test_rejected_case_stays_quiet():
    run = Run(escalation(sr_number=None))
    run.open(T0)
    assert run.tick(utc(2024, 3, 20)).changes == {}


def test_rejection_note_can_be_internal():
    policy = policy_with(lambda d: d["validation"].update(note_public=False))
    decision = Run(escalation(sr_number=None), policy).open(T0)
    assert decision.notes[0].public is False
