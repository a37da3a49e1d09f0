"""Escalation Manager review clock (seed 002: "for review within 4 business hours")."""
from datetime import timedelta

import pytest

from tests.fixtures.policy.builders import Run, escalation, hit_names, policy_with, utc

# Tuesday 2024-03-05 09:00 PST = 17:00 UTC; the case was created 5 h before, so Sev2 Enterprise
# (4 h minimum, seed 002) may be escalated at once.
CREATED = utc(2024, 3, 5, 12)
ACCEPTED = utc(2024, 3, 5, 17)
MANAGER = "eve@escalations.tier1.example.com"


def review_notes(decision) -> list:
    return [n for n in decision.notes if n.rule.startswith("escalation.review")]


def escalated(policy=None, **fields) -> Run:
    run = Run(escalation(created_at=CREATED, case_created_at=CREATED, **fields), policy)
    run.open(CREATED)
    run.observe("azure_devops", CREATED + timedelta(minutes=30), state="actively_working")
    run.observe("zendesk", ACCEPTED, escalation_requested=1)
    assert run.esc.escalation_level == 1
    return run


# (when the request is accepted, due time): 4 business hours of Monday-Friday 09:00-17:00 Pacific
DUE_TIMES = [
    pytest.param(utc(2024, 3, 5, 17), utc(2024, 3, 5, 21), id="tue-09:00-due-13:00"),
    pytest.param(utc(2024, 3, 5, 23), utc(2024, 3, 6, 19), id="tue-15:00-due-wed-11:00"),
    pytest.param(utc(2024, 3, 9, 0), utc(2024, 3, 11, 19), id="fri-16:00-due-mon-12:00-pdt"),
    pytest.param(utc(2024, 3, 10, 20), utc(2024, 3, 11, 20), id="sunday-due-mon-13:00-pdt"),
]


@pytest.mark.parametrize("accepted, due", DUE_TIMES)
def test_review_due_in_4_business_hours(accepted, due):
    run = Run(escalation(created_at=CREATED, case_created_at=CREATED))
    run.open(CREATED)
    decision = run.observe("zendesk", accepted, escalation_requested=1)
    assert run.esc.review_due_at == due and run.esc.review_level == 1
    assert "escalation.review.started" in hit_names(decision)
    [note] = [n for n in decision.notes if n.rule == "escalation.review.started"]
    assert note.target == "all" and not note.public and "4 business hours" in note.body


def test_warning_at_75_percent_and_breach_at_the_due_time():
    run = escalated()  # due 13:00 PST = 21:00 UTC
    assert review_notes(run.tick(utc(2024, 3, 5, 19, 59))) == []  # 2 h 59 m elapsed
    [warning] = review_notes(run.tick(utc(2024, 3, 5, 20)))  # 3 h = 75 %
    assert warning.key == "review-warning:1" and run.esc.review_warned_at is not None
    assert "1h 00m of business time left" in warning.body
    assert review_notes(run.tick(utc(2024, 3, 5, 20, 30))) == []  # warned once
    [breach] = review_notes(run.tick(utc(2024, 3, 5, 21)))
    assert breach.key == "review-breach:1" and "no Escalation Manager has answered" in breach.body
    assert run.esc.review_breached_at == utc(2024, 3, 5, 21)
    assert review_notes(run.tick(utc(2024, 3, 6, 21))) == []  # breached once


def test_a_reply_by_an_escalation_manager_meets_it():
    policy = policy_with(lambda d: d["management_escalation"]["review"].update(
        managers=["*@escalations.tier1.example.com"]))
    run = escalated(policy)
    run.observe("zendesk", utc(2024, 3, 5, 18), comments=("I am on it",))  # author unknown
    assert run.esc.review_met_at is None
    decision = run.observe_comment("zendesk", utc(2024, 3, 5, 19), MANAGER,
                                   "Accepted: plan of action attached")
    assert run.esc.review_met_at == utc(2024, 3, 5, 19) and run.esc.review_met_by == MANAGER
    [note] = [n for n in decision.notes if n.rule == "escalation.review.met"]
    assert "on time" in note.body
    assert review_notes(run.tick(utc(2024, 3, 6, 21))) == []  # met: no breach later


def test_a_late_reply_is_met_late():
    run = escalated()
    decision = run.observe_comment("zendesk", utc(2024, 3, 5, 22), "mia.manager@tier1.example.com",
                                   "Decision: declined, standard triage applies")
    [note] = [n for n in decision.notes if n.rule == "escalation.review.met"]
    assert "late (due 2024-03-05 21:00 UTC)" in note.body
    assert run.esc.review_met_at == utc(2024, 3, 5, 22)


def test_the_decision_field_meets_it_and_others_do_not():
    run = escalated()
    run.observe_comment("zendesk", utc(2024, 3, 5, 18), "alice.agent@tier1.example.com", "any news?")
    assert run.esc.review_met_at is None
    run.observe("zendesk", utc(2024, 3, 5, 18, 30), escalation_decision="accepted: plan B")
    assert run.esc.review_met_at == utc(2024, 3, 5, 18, 30)
    assert run.esc.review_met_by == "zendesk field escalation_decision"


def test_each_level_starts_a_new_review():
    run = escalated()
    run.observe("zendesk", utc(2024, 3, 5, 18, 30), escalation_decision="accepted")
    run.observe("zendesk", utc(2024, 3, 5, 22), escalation_requested=2)
    assert run.esc.review_level == 2 and run.esc.review_met_at is None
    assert run.esc.review_due_at == utc(2024, 3, 6, 18)  # Tue 14:00 PST + 4 h -> Wed 10:00


def test_review_hours_are_configurable():
    policy = policy_with(lambda d: d["management_escalation"]["review"].update(hours=2))
    run = escalated(policy)
    assert run.esc.review_due_at == utc(2024, 3, 5, 19)


def test_no_review_clock_without_the_section():
    policy = policy_with(lambda d: d["management_escalation"].pop("review"))
    run = escalated(policy)
    assert run.esc.review_due_at is None
