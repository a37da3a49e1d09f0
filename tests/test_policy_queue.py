"""Queue order (seeds 002/003) and priority abuse (seed 003), with a controlled clock."""
from datetime import timedelta

import pytest

from core.policy.queue import QueueRankConfig, queue_rank
from core.policy.report import abuse_report, status_rows
from tests.fixtures.policy.builders import Run, escalation, policy_with, shipped_policy, utc

CREATED = utc(2024, 3, 5, 17)
CONFIG = QueueRankConfig()  # shipped weights: urgent 8, high 4, normal 2, low 1; plans 3/2/1

# (priority, plan, age in hours, expected rank = round(100000 / (p x plan x (1 + 0.02 x age))))
RANKS = [
    pytest.param("normal", "professional", 0, 25000, id="normal-professional-new"),
    pytest.param("high", "professional", 0, 12500, id="high-pushes-it-up"),
    pytest.param("high", "enterprise", 0, 8333, id="high-enterprise-higher-still"),
    pytest.param("urgent", "enterprise", 0, 4167, id="urgent-enterprise-top"),
    pytest.param("normal", "professional", 7, 25000, id="age-counts-in-8h-steps"),
    pytest.param("normal", "professional", 8, 21552, id="8h-old"),
    pytest.param("normal", "professional", 500, 10246, id="age-capped-at-72h"),
    pytest.param(None, None, 0, 25000, id="missing-priority-normal-missing-plan-professional"),
]


@pytest.mark.parametrize("priority, plan, hours, rank", RANKS)
def test_rank_from_priority_plan_and_age(priority, plan, hours, rank):
    esc = escalation(created_at=CREATED, customer_priority=priority, support_plan=plan)
    assert queue_rank(esc, CONFIG, CREATED + timedelta(hours=hours)) == rank


def test_rank_is_kept_on_the_escalation_and_moves_in_steps():
    run = Run(escalation(created_at=CREATED, customer_priority="high"))
    run.open(CREATED)
    assert run.esc.queue_rank == 8333
    assert "queue_rank" not in run.tick(CREATED + timedelta(hours=7)).changes
    assert run.tick(CREATED + timedelta(hours=8)).changes["queue_rank"] == 7184


def test_weights_are_configurable():
    policy = policy_with(lambda d: d["queue_rank"].update(priority_weights={"low": 1, "normal": 1,
                                                                            "high": 10, "urgent": 20}))
    run = Run(escalation(created_at=CREATED, customer_priority="high"), policy)
    run.open(CREATED)
    assert run.esc.queue_rank == round(100000 / 30)


def test_status_is_in_queue_order():
    policy = shipped_policy()
    now = CREATED + timedelta(hours=1)
    items = []
    for priority, plan, created in (("normal", "professional", CREATED),
                                    ("high", "enterprise", CREATED + timedelta(minutes=30)),
                                    ("normal", "professional", CREATED - timedelta(hours=30))):
        run = Run(escalation(created_at=created, customer_priority=priority, support_plan=plan,
                             partner_name="Fabrikam" if plan == "professional" else "Contoso Ltd"),
                  policy)
        run.open(created)
        items.append(run.esc)
    rows = status_rows(items, policy, now)
    assert [r["customer_priority"] for r in rows] == ["high", "normal", "normal"]
    assert rows[1]["queue_rank"] < rows[2]["queue_rank"]  # the older normal case first


ABUSE = [
    pytest.param("urgent", 4, "urgent-on-minor-case", id="urgent-on-sev4"),
    pytest.param("high", 3, "urgent-on-minor-case", id="high-on-sev3"),
    pytest.param("urgent", 2, None, id="urgent-on-sev2-fine"),
    pytest.param("normal", 4, None, id="normal-on-sev4-fine"),
]


@pytest.mark.parametrize("priority, severity, flag", ABUSE)
def test_priority_abuse_rule(priority, severity, flag):
    run = Run(escalation(created_at=CREATED, customer_priority=priority, severity=severity))
    decision = run.open(CREATED)
    assert run.esc.priority_abuse == flag
    notes = [n for n in decision.notes if n.rule.startswith("priority_abuse")]
    assert len(notes) == (1 if flag else 0)
    if flag:
        assert not notes[0].public and "misuse of the Urgent and High priorities" in notes[0].body


def test_a_flag_stays_and_is_noted_once():
    run = Run(escalation(created_at=CREATED, customer_priority="urgent", severity=4))
    run.open(CREATED)
    later = run.observe("zendesk", CREATED + timedelta(hours=1), customer_priority="normal")
    assert run.esc.priority_abuse == "urgent-on-minor-case"
    assert not [n for n in later.notes if n.rule.startswith("priority_abuse")]


def test_counters_per_requester_and_partner_and_the_urgent_share():
    policy = shipped_policy()
    items = []
    for index, (priority, severity) in enumerate([("urgent", 4), ("urgent", 3), ("urgent", 2),
                                                  ("normal", 2)]):
        run = Run(escalation(created_at=CREATED, customer_priority=priority, severity=severity))
        run.open(CREATED + timedelta(minutes=index))
        items.append(run.esc)
    report = abuse_report(items, policy)
    assert report["requesters"] == {"support@contoso.com": 2}
    assert report["partners"] == {"Contoso Ltd": 2}
    assert report["share"] == {"support@contoso.com": 0.75}  # 3 of 4 urgent, above 50 %


def test_the_sla_report_shows_the_abuse_flags_and_not_converted_records():
    from core.report_render import csv_rows, html
    from core.sla_report import assemble, parse_period
    period = parse_period("2024-03-01", "2024-03-31")
    flagged = [Run(escalation(created_at=CREATED, customer_priority="urgent", severity=4,
                              requester_email=who)) for who in ("a@contoso.com", "a@contoso.com",
                                                                 "b@contoso.com")]
    items = []
    for run in flagged:
        run.open(CREATED)
        items.append(run.esc)
    items.append(escalation(created_at=CREATED, state="rejected",
                            not_converted_reason="the requester address x@y is not registered"))
    data = assemble(items, {}, [], period, CREATED + timedelta(days=1))
    assert data["priority_abuse"]["requesters"] == {"a@contoso.com": 2, "b@contoso.com": 1}
    assert data["priority_abuse"]["partners"] == {"Contoso Ltd": 3}
    assert data["rejections"] == {"not converted: the requester address x@y is not registered": 1}
    rows = [r for r in csv_rows(data) if r["section"].startswith("priority_abuse")]
    assert {(r["section"], r["value"], r["count"]) for r in rows} == {
        ("priority_abuse_requester", "a@contoso.com", 2),
        ("priority_abuse_requester", "b@contoso.com", 1),
        ("priority_abuse_partner", "Contoso Ltd", 3)}
    assert "Priority abuse flags" in html(data) and "a@contoso.com" in html(data)
