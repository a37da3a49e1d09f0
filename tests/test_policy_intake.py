"""Intake rules: unregistered senders are not converted (seed 003), the SR number format (seed
000), the tenant domain (seed 001), and which trackers are tier 2 (seed 000 step 1)."""
from datetime import timedelta

import pytest

from core.errors import ConfigError
from core.model import Link, LinkRole, State
from core.policy import parse_policy
from core.policy.report import not_converted_rows
from tests.fixtures.policy.builders import Run, escalation, hit_names, policy_with, shipped_data, utc

T0 = utc(2024, 3, 5, 17)
REGISTERED = policy_with(lambda d: d["validation"]["entitlement"].update(
    requesters=["*@contoso.com"]))


def test_an_unregistered_sender_is_not_converted():
    run = Run(escalation(requester_email="someone@gmail.com"), REGISTERED)
    decision = run.open(T0)
    assert run.esc.state is State.REJECTED
    assert run.esc.not_converted_reason == ("the requester address someone@gmail.com is not "
                                            "registered for support")
    assert decision.notes == [] and decision.mirrors == []  # no reply, no mirror
    assert run.esc.routing_rule is None and run.esc.rejection_reason is None
    assert hit_names(decision) == ["validation.not_converted"]
    [row] = not_converted_rows([run.esc])
    assert row["record"] == "zendesk:101" and row["requester"] == "someone@gmail.com"


def test_a_not_converted_record_is_converted_once_the_address_is_registered():
    run = Run(escalation(requester_email="someone@gmail.com"), REGISTERED)
    run.open(T0)
    assert run.observe("zendesk", T0 + timedelta(hours=1), description="again").changes == {}
    later = policy_with(lambda d: d["validation"]["entitlement"].update(
        requesters=["*@contoso.com", "*@gmail.com"]))
    run.policy = later
    decision = run.observe("zendesk", T0 + timedelta(hours=2), description="please")
    assert run.esc.state is State.NEW and run.esc.not_converted_reason is None
    assert run.esc.routing_rule == "tier2-default" and decision.mirrors


def test_reject_mode_closes_with_a_reply_instead():
    policy = policy_with(lambda d: d["validation"]["entitlement"].update(
        requesters=["*@contoso.com"], unregistered="reject"))
    run = Run(escalation(requester_email="someone@gmail.com"), policy)
    decision = run.open(T0)
    assert "validation.entitlement.requester" in hit_names(decision)
    assert decision.notes[0].public and run.esc.not_converted_reason is None


def test_an_empty_registered_list_is_a_check_warning():
    from tests.fixtures.policy.builders import shipped_policy
    assert any("validation.entitlement.requesters is empty" in w
               for w in shipped_policy().warnings())
    assert REGISTERED.warnings() == []


# seed 000: "the 15-digit service request (SR) number"; its own example has 14 digits
SR_NUMBERS = [
    pytest.param("12345678910123", True, id="seed-example-14-digits"),
    pytest.param("123456789101234", True, id="15-digits"),
    pytest.param("123", False, id="3-digits"),
    pytest.param("1234567891012", False, id="13-digits"),
    pytest.param("1234567891012345", False, id="16-digits"),
    pytest.param("12345678910123A", False, id="letter"),
]


@pytest.mark.parametrize("sr, accepted", SR_NUMBERS)
def test_sr_number_pattern(sr, accepted):
    run = Run(escalation(sr_number=sr))
    decision = run.open(T0)
    assert (run.esc.state is State.NEW) is accepted
    if not accepted:
        assert "validation.format.sr_number" in hit_names(decision)
        assert f"sr_number '{sr}' is not valid: expected 14 or 15 digits" in run.esc.rejection_reason


def test_sr_pattern_is_configurable_and_checked_on_load():
    policy = policy_with(lambda d: d["validation"]["formats"].update(
        sr_number={"pattern": r"SR-\d{6}", "description": "SR- and 6 digits"}))
    run = Run(escalation(sr_number="SR-123456"), policy)
    run.open(T0)
    assert run.esc.state is State.NEW
    data = shipped_data()
    data["validation"]["formats"]["sr_number"]["pattern"] = "(["
    with pytest.raises(ConfigError) as exc:
        parse_policy(data, "policy.yaml")
    assert "validation.formats.sr_number.pattern" in str(exc.value)


# seed 001: "onmicrosoft domain name" is mandatory for the Microsoft cloud offers
TENANT = [
    pytest.param("Microsoft 365", None, False, "mandatory fields missing: tenant_domain",
                 id="m365-needs-it"),
    pytest.param("Microsoft 365", "contoso.onmicrosoft.com", True, None, id="m365-with-it"),
    pytest.param("Microsoft 365", "contoso.com", False, "a <tenant>.onmicrosoft.com domain",
                 id="m365-wrong-domain"),
    pytest.param("SaaS Offer", None, True, None, id="saas-does-not-need-it"),
]


@pytest.mark.parametrize("offer, domain, accepted, reason", TENANT)
def test_tenant_domain(offer, domain, accepted, reason):
    run = Run(escalation(offer_type=offer, tenant_domain=domain))
    run.open(T0)
    assert (run.esc.state is State.NEW) is accepted
    if reason:
        assert reason in run.esc.rejection_reason


def worked_from_azure_devops() -> Run:
    """Tier 2 created the request in Azure DevOps (seed 000 step 1); Zendesk is a mirror."""
    links = [Link(tracker="azure_devops", remote_id="7", role=LinkRole.ORIGIN),
             Link(tracker="zendesk", remote_id="101")]
    run = Run(escalation(links=links, created_at=T0))
    run.open(T0)
    run.observe("azure_devops", T0, state="actively_working")
    return run


def test_tier_2_updates_on_the_origin_tracker_count_for_the_daily_update():
    run = worked_from_azure_devops()
    run.observe("azure_devops", utc(2024, 3, 6, 15), comments=("update for today",))
    assert run.esc.last_tier2_update_at == utc(2024, 3, 6, 15)
    decision = run.tick(utc(2024, 3, 6, 17))  # Wed 09:00 PST: 2 h after tier 2's update
    assert not [n for n in decision.notes if n.rule == "tiers.daily_update"]
    run.observe("zendesk", utc(2024, 3, 6, 18), comments=("tier 1 note",))  # not tier 2
    assert run.esc.last_tier2_update_at == utc(2024, 3, 6, 15)


def test_tier_2_trackers_follow_the_routing_mirrors_by_default():
    from tests.fixtures.policy.builders import shipped_policy
    assert shipped_policy().tier2 == frozenset({"azure_devops", "jira"})


def test_check_warns_that_the_registered_addresses_are_empty(monkeypatch):
    from pathlib import Path

    from typer.testing import CliRunner

    from sync import app
    for name in ("ZENDESK_EMAIL", "ZENDESK_TOKEN", "AZURE_DEVOPS_PAT", "JIRA_EMAIL", "JIRA_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    config = Path(__file__).resolve().parents[1] / "examples" / "tiersync.yaml"
    result = CliRunner().invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "validation.entitlement.requesters is empty" in result.output


def test_a_case_converted_before_the_address_was_removed_is_rejected_with_notes():
    run = Run(escalation(requester_email="someone@gmail.com"))  # shipped: nobody registered
    run.open(T0)
    assert run.esc.routing_rule is not None
    run.policy = REGISTERED
    decision = run.observe("zendesk", T0 + timedelta(hours=1), description="more")
    assert run.esc.state is State.REJECTED and run.esc.not_converted_reason is None
    assert {n.target for n in decision.notes} == {"origin", "mirrors"}


def test_check_warns_about_audiences_nobody_is_notified_for_and_an_unmeetable_review():
    policy = policy_with(lambda d: (d["people"]["audiences"].pop("team leads"),
                                    d["management_escalation"]["review"].update(
                                        managers=[], decision_field=False)))
    warnings = " ".join(policy.warnings())
    assert "people.audiences has no addresses for ['team leads']" in warnings
    assert "the review clock can never be met" in warnings
    from tests.fixtures.policy.builders import shipped_policy
    assert len(shipped_policy().warnings()) == 1  # only the empty registered-address list
