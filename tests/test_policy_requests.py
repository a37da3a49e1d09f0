"""Management escalation requests (seed 002): asking again, the top of the ladder, case age
from the origin record, and the people each level notifies (the CSM at level 2)."""
from datetime import timedelta

import pytest

from core.model import Link, LinkRole
from tests.fixtures.policy.builders import Run, escalation, hit_names, policy_with, utc

CREATED = utc(2024, 3, 5, 12)  # the ticket's creation in Zendesk
LATER = CREATED + timedelta(hours=6)


def working_case(policy=None, **fields) -> Run:
    run = Run(escalation(created_at=CREATED, case_created_at=CREATED, **fields), policy)
    run.open(CREATED)
    return run


def test_a_refused_request_is_reset_so_asking_again_is_a_new_change():
    run = working_case()
    refused = run.observe("zendesk", CREATED + timedelta(hours=1), escalation_requested=1)
    assert run.esc.escalation_requested == 0  # written back to the origin: esc_none
    assert "escalation.refused.too_early" in hit_names(refused)
    accepted = run.observe("zendesk", CREATED + timedelta(hours=4), escalation_requested=1)
    assert run.esc.escalation_level == 1 and run.esc.escalation_requested == 0
    assert "escalation.level_1" in hit_names(accepted)
    first, second = run.esc.escalation_history
    assert (first.outcome, first.rule, first.from_level, first.to_level) == ("refused", "too_early", 0, 0)
    assert "once it is 4 hours old" in first.reason
    assert (second.outcome, second.to_level, second.at) == ("accepted", 1, CREATED + timedelta(hours=4))


def test_an_unchanged_request_field_is_not_a_new_request():
    run = working_case()
    run.observe("zendesk", LATER, escalation_requested=1)
    # a stored escalation from before the reset (requested == level) asks for nothing
    assert run.observe("zendesk", LATER + timedelta(minutes=5), description="x").changes.get(
        "escalation_level") is None
    assert run.tick(LATER + timedelta(hours=1)).changes == {}


def test_level_4_is_the_top_and_a_further_request_gets_an_automatic_answer():
    run = working_case()
    for level in (1, 2, 3, 4):
        run.observe("zendesk", LATER + timedelta(minutes=level), escalation_requested=level)
    assert run.esc.escalation_level == 4
    decision = run.observe("zendesk", LATER + timedelta(hours=1), escalation_requested=4)
    assert run.esc.escalation_level == 4 and run.esc.escalation_requested == 0
    assert "escalation.top" in hit_names(decision)
    [note] = [n for n in decision.notes if n.rule == "escalation.top"]
    assert (note.target, note.public) == ("origin", True)
    assert "highest escalation level (4)" in note.body
    assert run.esc.escalation_history[-1].outcome == "top"


def test_explain_at_level_4_says_it_is_the_top():
    from core.policy import explain
    from tests.fixtures.policy.builders import shipped_policy
    esc = escalation(created_at=CREATED, escalation_level=4, routing_rule="tier2-default")
    lines = explain(esc, esc, None, shipped_policy(), LATER)
    assert any("level 4 is the top" in line for line in lines)
    assert not any("would be accepted" in line for line in lines)


# seed 002: the case is 5 h old in Zendesk but tiersync first saw it only now (tagged late)
AGES = [
    pytest.param(5, 4, True, id="created-5h-before-tagging-sev2-premium-accepted"),
    pytest.param(3.9, 4, False, id="created-3h54-before-refused"),
    pytest.param(9, 8, True, id="sev2-standard-9h-accepted"),
]


@pytest.mark.parametrize("hours_before, minimum, accepted", AGES)
def test_case_age_counts_from_the_origin_records_creation(hours_before, minimum, accepted):
    tagged = utc(2024, 3, 5, 17)
    plan = "enterprise" if minimum == 4 else "professional"
    partner = {} if plan == "enterprise" else {"partner_name": "Fabrikam"}
    run = Run(escalation(created_at=tagged, support_plan=plan, **partner,
                         case_created_at=tagged - timedelta(hours=hours_before)))
    run.open(tagged)
    run.observe("zendesk", tagged + timedelta(minutes=1), escalation_requested=1)
    assert (run.esc.escalation_level == 1) is accepted


def test_without_an_origin_creation_time_the_first_sight_counts():
    tagged = utc(2024, 3, 5, 17)
    run = Run(escalation(created_at=tagged))
    run.open(tagged)
    run.observe("zendesk", tagged + timedelta(hours=1), escalation_requested=1)
    assert run.esc.escalation_level == 0


def test_each_level_notifies_its_audience_and_the_csm_from_the_record_at_level_2():
    run = working_case(csm_email="carla.csm@tier1.example.com")
    first = run.observe("zendesk", LATER, escalation_requested=1)
    [note1] = [n for n in first.notes if n.key == "escalation-level:1"]
    assert note1.notify == ("sam.senior@tier1.example.com", "lee.lead@tier1.example.com",
                            "mia.manager@tier1.example.com")
    second = run.observe("zendesk", LATER + timedelta(minutes=5), escalation_requested=2)
    [note2] = [n for n in second.notes if n.key == "escalation-level:2"]
    assert note2.notify[:3] == note1.notify
    assert "sid.director@tier1.example.com" in note2.notify
    assert note2.notify[-1] == "carla.csm@tier1.example.com"
    assert note2.target == "all"


def test_the_csm_comes_from_the_table_when_the_record_has_none():
    policy = policy_with(lambda d: d["people"]["csm"].update(table={"contoso ltd": "csm@x.example"}))
    run = working_case(policy)
    run.observe("zendesk", LATER, escalation_requested=1)
    decision = run.observe("zendesk", LATER + timedelta(minutes=5), escalation_requested=2)
    [note] = [n for n in decision.notes if n.key == "escalation-level:2"]
    assert "csm@x.example" in note.notify


def test_requests_from_an_azure_devops_origin_count_the_work_item_creation():
    links = [Link(tracker="azure_devops", remote_id="7", role=LinkRole.ORIGIN)]
    run = Run(escalation(links=links, created_at=LATER, case_created_at=CREATED))
    run.open(LATER)
    run.observe("azure_devops", LATER, escalation_requested=1)
    assert run.esc.escalation_level == 1


def test_a_mirrors_creation_time_does_not_replace_the_origins():
    run = working_case()
    decision = run.observe("jira", LATER, case_created_at=LATER)
    assert run.esc.case_created_at == CREATED
    assert "escalation.case_age.origin_only" in hit_names(decision)
    run.observe("zendesk", LATER, case_created_at=CREATED - timedelta(hours=1))  # the origin may
    assert run.esc.case_created_at == CREATED - timedelta(hours=1)


def test_the_sla_report_counts_answers_not_the_review_clock():
    from core.report_data import _decision, _parts
    rule = ("escalation.top,escalation.review.started,escalation.case_age.origin_only,"
            "escalation.level_2,sla.acknowledgement.met")
    assert _parts(rule) == ["escalation.top", "escalation.level_2"]
    top = _decision({"rule": "escalation.top", "escalation_id": "e", "version": 9}, {})
    assert (top["outcome"], top["rule"], top["level"]) == ("refused", "top", 4)
