"""When the next periodic decision is due (core/policy/next_due.py), against the decision itself.

For each case the escalation is first settled (decided at ``now``, so deciding it again at
``now`` is quiet). Then: deciding it at any moment before the returned instant is just as quiet
(one minute before, and samples in between), and deciding it at that instant says something.

Times: Tuesday 2024-03-05 17:00 UTC is 09:00 Pacific (business hours 09:00-17:00, Mon-Fri).
Sev2 Enterprise: acknowledgement 1 h, first solution 8 h, close 40 h; warnings at 75 %; queue
rank steps every 8 h of age up to 72 h; daily update after 8 business hours.
"""
from datetime import datetime, timedelta

import pytest

from core.model import State

from core.policy.next_due import warning_instant
from tests.fixtures.policy.builders import Run, escalation, policy_with, shipped_policy, utc

T0 = utc(2024, 3, 5, 17)
MINUTE = timedelta(minutes=1)


def quiet(run: Run, at: datetime) -> bool:
    decision = run.policy.decide(run.esc, run.esc, None, at)
    return not (decision.changes or decision.notes or decision.mirrors)


NO_RANK = policy_with(lambda data: data.pop("queue_rank"))


def routed(at: datetime = T0, policy=None, **fields) -> Run:
    run = Run(escalation(created_at=at, updated_at=at, **fields), policy)
    run.open(at)
    return run


def working(at: datetime = T0 + timedelta(minutes=30)) -> Run:
    run = routed()
    run.observe("azure_devops", at, state="actively_working")
    return run


def warned() -> Run:
    run = routed()
    run.tick(utc(2024, 3, 5, 17, 45))
    return run


def waiting() -> Run:
    run = working()
    run.observe("azure_devops", T0 + timedelta(hours=1), state="waiting_on_customer")
    return run


def reviewing() -> Run:
    created = T0 - timedelta(hours=5)
    run = Run(escalation(created_at=created, updated_at=created, case_created_at=created))
    run.open(created)
    run.observe("azure_devops", created + timedelta(minutes=30), state="actively_working")
    run.observe("zendesk", T0, escalation_requested=1)
    return run


# (case, settled at, next decision due, the rule that fires then)
CASES = [
    pytest.param(routed, T0, utc(2024, 3, 5, 17, 45), "sla.acknowledgement.warning",
                 id="acknowledgement-warning-at-75-percent"),
    pytest.param(warned, utc(2024, 3, 5, 17, 45), utc(2024, 3, 5, 18), "sla.acknowledgement.breach",
                 id="acknowledgement-breach-after-the-warning"),
    # routed Tuesday 16:50 Pacific: 10 min that day, the warning 35 min into Wednesday (without
    # the queue rank, whose 8 h age step would come first)
    pytest.param(lambda: routed(utc(2024, 3, 6, 0, 50), NO_RANK), utc(2024, 3, 6, 0, 50),
                 utc(2024, 3, 6, 17, 35), "sla.acknowledgement.warning", id="warning-over-the-night"),
    # Sev1 runs on the 24x7 calendar: 15 min target, warning after 11 min 15 s
    pytest.param(lambda: routed(utc(2024, 3, 9, 3), severity=1), utc(2024, 3, 9, 3),
                 utc(2024, 3, 9, 3, 11, 15), "sla.acknowledgement.warning", id="sev1-24x7"),
    # work started 17:30: first solution warns after 6 of its 8 business hours (23:30)
    pytest.param(working, T0 + timedelta(minutes=30), utc(2024, 3, 5, 23, 30),
                 "sla.first_solution.warning", id="first-solution-warning"),
    # waiting on the customer pauses the clocks: only the queue rank's 8 h age step is left
    pytest.param(waiting, T0 + timedelta(hours=1), utc(2024, 3, 6, 1), "queue.rank",
                 id="paused-clocks-leave-the-rank-step"),
    # accepted at 09:00 Pacific: the review is due 13:00 (21:00 UTC), warning at 12:00
    pytest.param(reviewing, T0, utc(2024, 3, 5, 20), "escalation.review.warning", id="review-warning"),
]


@pytest.mark.parametrize("make, now, due, rule", CASES)
def test_next_decision_is_the_first_moment_the_decision_changes(make, now, due, rule):
    run = make()
    run.tick(now)  # settled: deciding again at `now` is quiet
    assert quiet(run, now)
    found = run.policy.next_decision_at(run.esc, now)
    assert found == due
    assert quiet(run, due - MINUTE)
    for part in range(1, 8):  # and every moment sampled in between
        assert quiet(run, now + (due - MINUTE - now) * part / 8)
    decision = run.policy.decide(run.esc, run.esc, None, due)
    assert rule in {f"{hit.family}.{hit.rule}" for hit in decision.hits}


def test_a_walk_through_the_days_never_misses_a_decision():
    """From each due instant to the next, decisions sampled every 20 minutes stay quiet, and
    every due instant brings a decision (the daily update reminder keeps it going)."""
    run = working()
    now, seen = T0 + timedelta(minutes=30), []
    run.tick(now)
    for _ in range(30):
        due = run.policy.next_decision_at(run.esc, now)
        moment = now + timedelta(minutes=20)
        while moment < due:
            assert quiet(run, moment), f"a decision at {moment} before the due {due}"
            moment += timedelta(minutes=20)
        decision = run.tick(due)
        assert decision.changes or decision.notes, f"nothing happened at {due}"
        seen += [f"{hit.family}.{hit.rule}" for hit in decision.hits]
        now = due
    for rule in ("sla.first_solution.warning", "sla.first_solution.breach", "sla.close.warning",
                 "sla.close.breach", "tiers.daily_update", "queue.rank"):
        assert rule in seen


@pytest.mark.parametrize("state", ["closed", "rejected"])
def test_a_closed_escalation_is_never_due(state):
    run = working()
    assert shipped_policy().next_decision_at(run.esc.model_copy(update={"state": State(state)}), T0) is None


def test_a_past_instant_is_now():
    run = routed()  # warning due 17:45, nobody asked until 17:50
    assert run.policy.next_decision_at(run.esc, utc(2024, 3, 5, 17, 50)) == utc(2024, 3, 5, 17, 50)


def test_warning_instant_skips_closed_hours():
    calendar = shipped_policy().calendars["pacific-business-hours"]
    due = utc(2024, 3, 6, 17, 50)  # Wednesday 09:50 Pacific
    assert warning_instant(calendar, utc(2024, 3, 6, 0, 55), due, 15 * 60) == utc(2024, 3, 6, 17, 35)
    assert warning_instant(calendar, utc(2024, 3, 6, 17, 40), due, 15 * 60) == utc(2024, 3, 6, 17, 40)
