"""Management escalation (seed 002): minimum ages by severity x plan, Sev1 never, levels 1-4."""
from datetime import timedelta

import pytest

from core.model import State
from tests.fixtures.policy.builders import Run, escalation, hit_names, policy_with, utc

CREATED = utc(2024, 3, 5, 17)
MINUTE = timedelta(minutes=1)

# seed 002: severity, plan, minimum age in hours (Enterprise is the premium plan)
MINIMUM_AGES = [
    (2, "enterprise", 4), (2, "professional", 8),
    (3, "enterprise", 8), (3, "professional", 16),
    (4, "enterprise", 16), (4, "professional", 24),
]
BOUNDARIES = [
    pytest.param(severity, plan, hours, offset, accepted,
                 id=f"sev{severity}-{plan}-{hours}h{label}")
    for severity, plan, hours in MINIMUM_AGES
    for offset, accepted, label in ((-MINUTE, False, "-1min"), (timedelta(0), True, "-exact"),
                                    (MINUTE, True, "+1min"))
]


def working_case(**fields) -> Run:
    run = Run(escalation(created_at=CREATED, **fields))
    run.open(CREATED)
    run.observe("azure_devops", CREATED + timedelta(minutes=30), state="actively_working")
    return run


@pytest.mark.parametrize("severity, plan, hours, offset, accepted", BOUNDARIES)
def test_minimum_age_boundaries(severity, plan, hours, offset, accepted):
    run = working_case(severity=severity, support_plan=plan)
    decision = run.observe("zendesk", CREATED + timedelta(hours=hours) + offset,
                           escalation_requested=1)
    if accepted:
        assert run.esc.escalation_level == 1
        assert f"escalation.level_1" in hit_names(decision)
        return
    assert run.esc.escalation_level == 0 and run.esc.escalation_requested == 0
    assert "escalation.refused.too_early" in hit_names(decision)
    [note] = [n for n in decision.notes if n.rule.startswith("escalation")]
    assert (note.target, note.public) == ("origin", True)
    plan_class = "premium" if plan == "enterprise" else "non-premium"
    assert f"once it is {hours} hours old (severity {severity}, {plan_class} support)" in note.body


@pytest.mark.parametrize("age_hours", [0, 30, 24 * 30])
def test_severity_1_is_never_escalated(age_hours):
    run = working_case(severity=1)
    decision = run.observe("zendesk", CREATED + timedelta(hours=age_hours), escalation_requested=1)
    assert run.esc.escalation_level == 0
    assert "escalation.refused.outage" in hit_names(decision)
    [note] = [n for n in decision.notes if n.rule == "escalation.refused.outage"]
    assert "24x7 on-call team" in note.body


def test_each_request_raises_one_level_and_notifies_a_growing_audience():
    run = working_case()
    later = CREATED + timedelta(hours=5)
    audiences = []
    for level in (1, 2, 3, 4):
        decision = run.observe("zendesk", later + timedelta(minutes=level),
                               escalation_requested=level)
        assert run.esc.escalation_level == level
        [note] = [n for n in decision.notes if n.key == f"escalation-level:{level}"]
        assert note.target == "all" and not note.public
        audiences.append(note.body)
    assert "senior support engineers, team leads, support managers." in audiences[0]
    assert "support managers, senior managers, directors" in audiences[1]
    assert "Senior Director of Global Technical Support" in audiences[2]
    assert "senior support engineers" in audiences[3] and "VP of Support" in audiences[3]


def test_asking_for_a_higher_level_still_goes_up_one_level():
    run = working_case()
    decision = run.observe("zendesk", CREATED + timedelta(hours=5), escalation_requested=3)
    assert (run.esc.escalation_level, run.esc.escalation_requested) == (1, 0)  # reset
    [hit] = [h for h in decision.hits if h.rule == "level_1"]
    assert "one level per request" in hit.detail


def test_a_refused_request_is_answered_once():
    run = working_case()
    run.observe("zendesk", CREATED + timedelta(hours=1), escalation_requested=1)
    assert run.tick(CREATED + timedelta(hours=6)).changes == {}  # not accepted later by itself
    run.observe("zendesk", CREATED + timedelta(hours=6), escalation_requested=1)
    assert run.esc.escalation_level == 1


@pytest.mark.parametrize("state", [State.CLOSED, State.REJECTED])
def test_closed_cases_are_not_escalated(state):
    run = working_case()
    run.observe("zendesk", CREATED + timedelta(hours=1), state=state.value)
    decision = run.observe("zendesk", CREATED + timedelta(hours=9), escalation_requested=1)
    assert run.esc.escalation_level == 0
    assert "escalation.refused.closed" in hit_names(decision)


def test_no_severity_cannot_be_escalated():
    run = working_case()
    decision = run.observe("azure_devops", CREATED + timedelta(hours=9), severity=None,
                           escalation_requested=1)
    assert "escalation.refused.no_severity" in hit_names(decision)


def test_business_hour_ages_when_configured():
    policy = policy_with(lambda d: d["management_escalation"].update(
        age_clock="business", calendar="pacific-business-hours"))
    friday = utc(2024, 3, 9, 0)  # Friday 16:00 PST: 1 business hour left that day
    run = Run(escalation(created_at=friday), policy)
    run.open(friday)
    run.observe("zendesk", utc(2024, 3, 11, 18, 59), escalation_requested=1)  # Mon 11:59 PDT
    assert run.esc.escalation_level == 0
    run.observe("zendesk", utc(2024, 3, 11, 19, 1), escalation_requested=1)  # Mon 12:01 PDT
    assert run.esc.escalation_level == 1


def test_refusal_reply_can_be_internal():
    policy = policy_with(lambda d: d["management_escalation"]["refusal"].update(public=False))
    run = Run(escalation(created_at=CREATED), policy)
    run.open(CREATED)
    decision = run.observe("zendesk", CREATED + timedelta(hours=1), escalation_requested=1)
    assert decision.notes[-1].public is False
