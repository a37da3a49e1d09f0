"""SLA clocks (seeds 000, 002, 003) on the shipped policy.

Times: Tuesday 2024-03-05 17:00 UTC is 09:00 Pacific (PST, UTC-8); US DST starts on Sunday
2024-03-10, after which 09:00 Pacific is 16:00 UTC. Sev2 Enterprise targets: acknowledgement 1 h,
first solution 8 h, close 40 h; Sev2 Professional acknowledgement 2 h (mappings/policy.yaml).
"""
import pytest

from core.model import SlaMetric, SlaMetricName, State
from tests.fixtures.policy.builders import Run, escalation, hit_names, note_keys, policy_with, utc

ACK, FIRST, CLOSE = SlaMetricName.ACKNOWLEDGEMENT, SlaMetricName.FIRST_SOLUTION, SlaMetricName.CLOSE
T0 = utc(2024, 3, 5, 17)  # Tuesday 09:00 PST
ALL_PLANS = policy_with(lambda d: d["validation"]["entitlement"].update(
    plans=["developer", "professional", "enterprise"]))


def started(routed=T0, working=T0, **fields) -> Run:
    run = Run(escalation(**fields), ALL_PLANS)
    run.open(routed)
    run.observe("azure_devops", working, state="actively_working")
    return run


# severity, plan, routed at, acknowledgement due
ACK_DUE = [
    pytest.param(2, "enterprise", T0, utc(2024, 3, 5, 18), id="sev2-enterprise-1h"),
    pytest.param(2, "professional", T0, utc(2024, 3, 5, 19), id="sev2-professional-2h"),
    pytest.param(2, "developer", T0, utc(2024, 3, 6, 1), id="sev2-developer-8h"),
    pytest.param(3, "enterprise", T0, utc(2024, 3, 5, 19), id="sev3-enterprise-2h"),
    pytest.param(3, "professional", T0, utc(2024, 3, 5, 21), id="sev3-professional-4h"),
    pytest.param(4, "enterprise", T0, utc(2024, 3, 5, 21), id="sev4-enterprise-4h"),
    pytest.param(4, "professional", T0, utc(2024, 3, 6, 1), id="sev4-professional-8h"),
    pytest.param(4, "developer", T0, utc(2024, 3, 8, 1), id="sev4-developer-24h"),
    # Friday 16:30 PST + 1 business hour = Monday 09:30 PDT, after the DST change
    pytest.param(2, "enterprise", utc(2024, 3, 9, 0, 30), utc(2024, 3, 11, 16, 30),
                 id="over-weekend-and-dst"),
    # Sev1 runs on the 24x7 NOC calendar: 15 / 30 / 60 minutes, even on a Saturday night
    pytest.param(1, "enterprise", utc(2024, 3, 9, 3), utc(2024, 3, 9, 3, 15), id="sev1-enterprise"),
    pytest.param(1, "professional", utc(2024, 3, 9, 3), utc(2024, 3, 9, 3, 30),
                 id="sev1-professional"),
    pytest.param(1, "developer", utc(2024, 3, 9, 3), utc(2024, 3, 9, 4), id="sev1-developer"),
    # 2024-07-04 is a holiday: Wednesday 16:00 PDT + 2 h = Friday 10:00 PDT
    pytest.param(2, "professional", utc(2024, 7, 3, 23), utc(2024, 7, 5, 17), id="over-holiday"),
]


@pytest.mark.parametrize("severity, plan, routed, due", ACK_DUE)
def test_acknowledgement_due_from_routing(severity, plan, routed, due):
    run = Run(escalation(severity=severity, support_plan=plan), ALL_PLANS)
    run.open(routed)
    assert run.esc.sla[ACK] == SlaMetric(due_at=due)
    assert run.esc.sla_clock.policy == ("sev1-outage-24x7" if severity == 1 else "business-hours")
    assert FIRST not in run.esc.sla  # the work clock has not started


def test_acknowledged_on_time_starts_the_work_clock():
    run = started(working=utc(2024, 3, 5, 17, 45))
    ack = run.esc.sla[ACK]
    assert (ack.met_at, ack.on_time, ack.breached_at) == (utc(2024, 3, 5, 17, 45), True, None)
    assert run.esc.sla_clock.started_at == utc(2024, 3, 5, 17, 45)
    assert run.esc.sla[FIRST].due_at == utc(2024, 3, 6, 17, 45)  # + 8 business hours
    assert run.esc.sla[CLOSE].due_at == utc(2024, 3, 12, 16, 45)  # + 40 h, Tuesday 09:45 PDT


def test_acknowledged_late_is_a_breach_with_a_reason():
    run = Run()
    run.open(T0)
    decision = run.observe("azure_devops", utc(2024, 3, 5, 18, 30), state="actively_working")
    ack = run.esc.sla[ACK]
    assert (ack.on_time, ack.breached_at) == (False, utc(2024, 3, 5, 18))
    assert ack.delayed_reason.startswith("tiersync: done 0h 30m business time after the 1 h")
    assert "sla-breach:acknowledgement" in note_keys(decision)


# minutes after routing, (warning posted, breach posted) — Sev2 Professional, 2 h target
WARN_AND_BREACH = [
    pytest.param(89, (False, False), id="1-minute-before-75-percent"),
    pytest.param(90, (True, False), id="at-75-percent"),
    pytest.param(119, (True, False), id="1-minute-before-due"),
    pytest.param(120, (False, True), id="at-due"),
]


@pytest.mark.parametrize("minutes, expected", WARN_AND_BREACH)
def test_warning_and_breach_boundaries(minutes, expected):
    run = Run(escalation(support_plan="professional"))
    run.open(T0)
    decision = run.tick(utc(2024, 3, 5, 17 + minutes // 60, minutes % 60))
    keys = note_keys(decision)
    assert ("sla-warning:acknowledgement" in keys, "sla-breach:acknowledgement" in keys) == expected


def test_warning_then_breach_are_recorded_once():
    run = Run(escalation(support_plan="professional"))
    run.open(T0)
    warning = run.tick(utc(2024, 3, 5, 18, 40))
    [note] = warning.notes
    assert (note.target, note.public, note.key) == ("all", False, "sla-warning:acknowledgement")
    assert "20m of business time left of the 2 h target" in note.body
    assert run.esc.sla[ACK].warned_at == utc(2024, 3, 5, 18, 40)
    assert run.tick(utc(2024, 3, 5, 18, 50)).notes == []
    breach = run.tick(utc(2024, 3, 5, 19, 5))
    assert note_keys(breach) == ["sla-breach:acknowledgement"]
    ack = run.esc.sla[ACK]
    assert (ack.breached_at, ack.on_time, ack.met_at) == (utc(2024, 3, 5, 19), False, None)
    assert ack.delayed_reason.startswith("tiersync: not done within the 2 h business-hour target")
    assert run.tick(utc(2024, 3, 6, 19)).notes == []


def test_breach_is_caught_by_a_periodic_check_over_a_weekend():
    run = Run()
    run.open(utc(2024, 3, 9, 0, 30))  # Friday 16:30 PST
    assert run.tick(utc(2024, 3, 10, 20)).notes == []  # Sunday: no business time passes
    assert note_keys(run.tick(utc(2024, 3, 11, 16, 29))) == ["sla-warning:acknowledgement"]
    assert note_keys(run.tick(utc(2024, 3, 11, 16, 30))) == ["sla-breach:acknowledgement"]


def test_waiting_on_the_customer_pauses_the_clock():
    run = started()  # work starts Tuesday 09:00 PST; first solution due Wednesday 09:00
    run.observe("azure_devops", utc(2024, 3, 5, 21), state="waiting_on_customer")  # Tue 13:00
    assert run.esc.sla_clock.paused_at == utc(2024, 3, 5, 21)
    assert run.tick(utc(2024, 3, 6, 18)).notes == []  # Wed 10:00: past the old due, paused
    decision = run.observe("zendesk", utc(2024, 3, 6, 21), state="actively_working")  # Wed 13:00
    assert "sla.clock.resumed" in hit_names(decision)
    clock = run.esc.sla_clock
    assert (clock.paused_at, clock.paused_seconds) == (None, 8 * 3600)
    assert run.esc.sla[FIRST].due_at == utc(2024, 3, 7, 1)  # Wed 17:00 PST: 8 h + 8 h paused
    assert run.esc.sla[CLOSE].due_at == utc(2024, 3, 13, 0)  # Tue 17:00 PDT: 40 h + 8 h
    assert run.esc.sla[ACK].due_at == utc(2024, 3, 5, 18)  # met before; not moved


def test_a_second_pause_adds_up():
    run = started()
    run.observe("azure_devops", utc(2024, 3, 5, 18), state="waiting_on_customer")
    run.observe("zendesk", utc(2024, 3, 5, 19), state="actively_working")
    run.observe("azure_devops", utc(2024, 3, 5, 20), state="waiting_on_customer")
    run.observe("zendesk", utc(2024, 3, 5, 20, 30), state="actively_working")
    assert run.esc.sla_clock.paused_seconds == 1.5 * 3600
    assert run.esc.sla[FIRST].due_at == utc(2024, 3, 6, 18, 30)


def test_only_the_first_solution_counts():
    run = started()
    run.observe("azure_devops", utc(2024, 3, 5, 23), state="solution_proposed")  # in time
    first = run.esc.sla[FIRST]
    assert (first.met_at, first.on_time) == (utc(2024, 3, 5, 23), True)
    run.observe("zendesk", utc(2024, 3, 6, 18), state="actively_working")  # not resolved
    decision = run.observe("azure_devops", utc(2024, 3, 7, 20), state="solution_proposed")
    assert run.esc.sla[FIRST] == first  # the second, late solution changes nothing
    assert "sla-breach:first_solution" not in note_keys(decision)


def test_close_is_met_when_closed_and_the_clocks_stop():
    run = started()
    run.observe("azure_devops", utc(2024, 3, 5, 23), state="solution_proposed")
    run.observe("zendesk", utc(2024, 3, 6, 17), state="closed")
    close = run.esc.sla[CLOSE]
    assert (close.met_at, close.on_time) == (utc(2024, 3, 6, 17), True)
    assert run.tick(utc(2024, 4, 30)).changes == {}


def test_closing_without_a_proposal_also_meets_the_first_solution():
    run = started()
    run.observe("zendesk", utc(2024, 3, 5, 20), state="closed")
    assert run.esc.sla[FIRST].met_at == utc(2024, 3, 5, 20)


def test_closing_while_paused_ends_the_pause_first():
    run = started()
    run.observe("azure_devops", utc(2024, 3, 5, 18), state="waiting_on_customer")
    run.observe("zendesk", utc(2024, 3, 11, 16), state="closed")  # Monday 09:00 PDT
    assert run.esc.sla_clock.paused_seconds == 31 * 3600
    assert run.esc.sla[CLOSE].on_time is True and run.esc.sla_clock.paused_at is None


def test_unmet_acknowledgement_of_a_closed_case_raises_nothing():
    run = Run()
    run.open(T0)
    run.observe("zendesk", utc(2024, 3, 5, 17, 30), state="closed")
    assert run.tick(utc(2024, 3, 8)).notes == []
    assert run.esc.sla[ACK].met_at is None


def test_a_delayed_reason_written_by_a_person_is_kept():
    run = started()
    sla = dict(run.esc.sla)
    sla[FIRST] = sla[FIRST].model_copy(update={"delayed_reason": "Waiting on the vendor"})
    run.observe("azure_devops", utc(2024, 3, 5, 20), sla=sla)
    run.tick(utc(2024, 3, 6, 18))  # past the Wednesday 09:00 due time
    first = run.esc.sla[FIRST]
    assert (first.on_time, first.delayed_reason) == (False, "Waiting on the vendor")


def test_a_person_may_replace_the_automatic_reason():
    run = started()
    run.tick(utc(2024, 3, 6, 18))
    assert run.esc.sla[FIRST].delayed_reason.startswith("tiersync: ")
    sla = dict(run.esc.sla)
    sla[FIRST] = sla[FIRST].model_copy(update={"delayed_reason": "Publisher unreachable"})
    run.observe("azure_devops", utc(2024, 3, 6, 19), sla=sla)
    run.observe("azure_devops", utc(2024, 3, 6, 20), state="solution_proposed")
    assert run.esc.sla[FIRST].delayed_reason == "Publisher unreachable"


def test_a_severity_change_moves_an_open_due_time():
    run = Run()
    run.open(T0)
    run.observe("zendesk", utc(2024, 3, 5, 17, 10), severity=4)
    assert run.esc.sla[ACK].due_at == utc(2024, 3, 5, 21)  # Sev4 Enterprise: 4 h


def test_sev1_runs_around_the_clock():
    run = started(routed=utc(2024, 3, 9, 3), working=utc(2024, 3, 9, 3, 10), severity=1)
    assert run.esc.sla[FIRST].due_at == utc(2024, 3, 9, 5, 10)  # 2 h, Saturday night
    assert run.esc.sla[CLOSE].due_at == utc(2024, 3, 10, 3, 10)  # 24 h


def test_no_target_no_due_time():
    run = Run(escalation(support_plan=None), ALL_PLANS)
    run.open(T0)  # rejected: a plan is mandatory
    assert run.esc.state is State.REJECTED and run.esc.sla == {}
