"""Routing (seeds 000, 003, 004): ordered rules, first match wins, a default, re-routing."""
import pytest

from core.model import Link, LinkRole, State, SupportTier
from tests.fixtures.policy.builders import Run, escalation, hit_names, policy_with, utc

T0 = utc(2024, 3, 5, 17)
OFFER = {"seller_id": "S-1", "offer_ids": ["contoso.app"]}

# fields, rule, queue, tier, assignee group, {mirror tracker: native fields}
ME = "Marketplace Experience"
ROUTES = [
    pytest.param({"security_incident": True, "severity": 1}, "security-incident", "Security SMEs",
                 "L3", "security-smes", {"azure_devops": {}, "jira": {"project": "SUP"}},
                 id="security-beats-sev1"),
    pytest.param({"severity": 1}, "sev1-outage", ME, "L2", "noc-shift-leads",
                 {"azure_devops": {}, "jira": {"project": "SUP"}}, id="sev1-outage"),
    pytest.param({"escalation_recommended": True}, "engineering", ME, "L3", "tier3-engineering",
                 {"azure_devops": {}, "jira": {"project": "ENG"}}, id="escalation-recommended"),
    pytest.param({"product": "network"}, "platform-smes", ME, "L2", "platform-smes",
                 {"azure_devops": {}}, id="stack-case-insensitive"),
    pytest.param({"top_partner": True}, "top-partner", ME, "L2", "top-partner-desk",
                 {"azure_devops": {}}, id="top-partner"),
    pytest.param({"engagement_type": "Publishing", "offer_type": "SaaS Offer", **OFFER},
                 "offer-publishing", ME, "L2", "publishing-desk", {"azure_devops": {}},
                 id="engagement-and-offer-type"),
    pytest.param({"engagement_type": "Publishing", "offer_type": "Virtual Machine Offer", **OFFER},
                 "tier2-default", ME, "L2", "tier2-agents", {"azure_devops": {}},
                 id="offer-type-not-listed"),
    pytest.param({}, "tier2-default", ME, "L2", "tier2-agents", {"azure_devops": {}},
                 id="default"),
]


@pytest.mark.parametrize("fields, rule, queue, tier, group, mirrors", ROUTES)
def test_routing_table(fields, rule, queue, tier, group, mirrors):
    run = Run(escalation(**fields))
    decision = run.open(T0)
    assert (run.esc.routing_rule, run.esc.queue, run.esc.tier.value, run.esc.assignee_group) == \
        (rule, queue, tier, group)
    assert {m.tracker: m.fields for m in decision.mirrors} == mirrors
    assert all(m.rule == f"routing.{rule}" for m in decision.mirrors)
    assert f"routing.{rule}" in hit_names(decision)
    assert run.esc.routed_at == T0


def test_no_mirror_in_a_tracker_that_already_has_the_record():
    origin = [Link(tracker="azure_devops", remote_id="7", role=LinkRole.ORIGIN)]
    run = Run(escalation(links=origin, contact_email="pat@contoso.com", security_incident=True))
    decision = run.open(T0)
    assert [m.tracker for m in decision.mirrors] == ["jira"]


def test_routed_at_is_when_the_change_happened_not_when_synced():
    run = Run()
    run.observe("zendesk", utc(2024, 3, 5, 17), now=utc(2024, 3, 5, 17, 4), title="Portal down")
    assert run.esc.routed_at == utc(2024, 3, 5, 17)


def test_security_flag_set_later_reroutes_to_the_security_smes():
    run = Run()
    run.open(T0)
    run.observe("azure_devops", utc(2024, 3, 5, 18), state="actively_working")
    decision = run.observe("zendesk", utc(2024, 3, 5, 19), security_incident=True)
    assert run.esc.routing_rule == "security-incident" and run.esc.tier is SupportTier.L3
    assert [m.tracker for m in decision.mirrors] == ["jira"]  # azure_devops is already linked
    assert "routing.reroute" in hit_names(decision)
    assert any(n.target == "all" and "Re-routed" in n.body for n in decision.notes)
    assert run.esc.routed_at == T0  # the acknowledgement clock does not restart


def test_rerouting_can_be_switched_off():
    policy = policy_with(lambda d: d["routing"].update(reroute_on_change=False))
    run = Run(policy=policy)
    run.open(T0)
    run.observe("zendesk", utc(2024, 3, 5, 19), security_incident=True)
    assert run.esc.routing_rule == "tier2-default"


def test_closed_escalations_are_not_routed():
    run = Run(escalation(state=State.CLOSED))
    decision = run.open(T0)
    assert decision.changes == {} and decision.mirrors == []


def test_without_default_an_unmatched_escalation_stays_unrouted():
    policy = policy_with(lambda d: d["routing"].pop("default"))
    run = Run(policy=policy)
    assert run.open(T0).changes == {}


def test_an_escalation_routed_before_routed_at_existed_gets_its_creation_time():
    run = Run(escalation(routing_rule="tier2-default", queue="Marketplace Experience", tier="L2"))
    decision = run.tick(utc(2024, 3, 5, 18))
    assert decision.mirrors == [] and run.esc.routed_at == run.esc.created_at
