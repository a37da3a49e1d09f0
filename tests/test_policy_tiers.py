"""Tiers and ownership (seeds 000, 004): hand-back, not resolved, tier held, daily update."""
from core.model import SupportTier
from tests.fixtures.policy.builders import Run, escalation, hit_names, note_keys, policy_with, utc

T0 = utc(2024, 3, 5, 17)  # Tuesday 09:00 PST
OWNER = "alice@support.example"
AGENT = "bob@tier2.example"


def reminders(decision) -> list[str]:
    return [key for key in note_keys(decision) if key.startswith("daily-update:")]


def worked_by_agent(**fields) -> Run:
    run = Run(escalation(**fields))
    run.open(T0)
    run.observe("azure_devops", T0, state="actively_working", assignee=AGENT)
    return run


def test_routing_records_the_original_owner_when_none_was_mapped():
    run = Run(escalation(original_owner=None, assignee="carol@support.example"))
    decision = run.open(T0)
    assert run.esc.original_owner == "carol@support.example"
    assert "tiers.original_owner" in hit_names(decision)


def test_solution_proposed_goes_back_to_the_original_owner():
    run = worked_by_agent()
    assert run.esc.tier is SupportTier.L2
    decision = run.observe("azure_devops", utc(2024, 3, 5, 22), state="solution_proposed")
    assert (run.esc.assignee, run.esc.solution_proposed_by) == (OWNER, AGENT)
    assert run.esc.tier is SupportTier.L1
    [note] = [n for n in decision.notes if n.rule == "tiers.solution_proposed"]
    assert note.target == "origin" and f"assigned back to its original owner {OWNER}" in note.body


def test_not_resolved_goes_back_to_the_agent_with_the_feedback():
    run = worked_by_agent()
    run.observe("azure_devops", utc(2024, 3, 5, 22), state="solution_proposed")
    decision = run.observe("zendesk", utc(2024, 3, 6, 18), state="actively_working",
                           comments=("Still failing after the suggested fix.",))
    assert run.esc.assignee == AGENT and run.esc.tier is SupportTier.L2
    [note] = [n for n in decision.notes if n.rule == "tiers.not_resolved"]
    assert note.target == "others"
    assert f"assigned back to {AGENT}" in note.body
    assert "Feedback: Still failing after the suggested fix." in note.body


def test_not_resolved_via_waiting_on_internal_without_a_comment():
    run = worked_by_agent()
    run.observe("azure_devops", utc(2024, 3, 5, 22), state="solution_proposed")
    decision = run.observe("zendesk", utc(2024, 3, 6, 18), state="waiting_on_internal")
    assert run.esc.assignee == AGENT
    [note] = [n for n in decision.notes if n.rule == "tiers.not_resolved"]
    assert "(no comment was added)" in note.body


def test_security_cases_are_held_by_tier_3():
    run = worked_by_agent(security_incident=True)
    assert run.esc.tier is SupportTier.L3


def test_updates_from_tier_2_trackers_are_recorded():
    run = worked_by_agent()
    assert run.esc.last_tier2_update_at == T0
    run.observe("zendesk", utc(2024, 3, 5, 20), description="more logs")  # tier 1: no
    assert run.esc.last_tier2_update_at == T0
    run.observe("jira", utc(2024, 3, 5, 21), comments=("looking at it",))
    assert run.esc.last_tier2_update_at == utc(2024, 3, 5, 21)


def test_tier_2_trackers_can_be_named():
    policy = policy_with(lambda d: d["tiers"].update(tier2_trackers=["azure_devops"]))
    run = Run(policy=policy)
    run.open(T0)
    run.observe("jira", utc(2024, 3, 5, 21), comments=("engineering note",))
    assert run.esc.last_tier2_update_at is None


def test_daily_update_reminder_once_per_business_day():
    run = worked_by_agent()  # last tier 2 update Tuesday 09:00 PST
    assert reminders(run.tick(utc(2024, 3, 6, 0, 59))) == []  # Tuesday 16:59: 7 h 59 m
    decision = run.tick(utc(2024, 3, 6, 17))  # Wednesday 09:00: a business day without update
    assert reminders(decision) == ["daily-update:2024-03-06"]
    [note] = [n for n in decision.notes if n.rule == "tiers.daily_update"]
    assert note.target == "mirrors" and not note.public
    assert reminders(run.tick(utc(2024, 3, 6, 23))) == []  # reminded today already
    assert reminders(run.tick(utc(2024, 3, 7, 17))) == ["daily-update:2024-03-07"]


def test_an_update_resets_the_reminder():
    run = worked_by_agent()
    run.observe("azure_devops", utc(2024, 3, 5, 23), comments=("progress",))
    assert reminders(run.tick(utc(2024, 3, 6, 17))) == []
    assert reminders(run.tick(utc(2024, 3, 6, 23))) == ["daily-update:2024-03-06"]


def test_no_reminder_over_the_weekend_or_while_waiting():
    run = Run()
    run.open(utc(2024, 3, 8, 23))  # Friday 15:00 PST
    run.observe("azure_devops", utc(2024, 3, 8, 23), state="actively_working")
    assert reminders(run.tick(utc(2024, 3, 10, 23))) == []  # Sunday
    run.observe("azure_devops", utc(2024, 3, 11, 16), state="waiting_on_customer")
    assert reminders(run.tick(utc(2024, 3, 13, 16))) == []


def test_second_reminder_counts_the_quiet_time_since_the_last_update():
    run = worked_by_agent()
    run.tick(utc(2024, 3, 6, 17))
    decision = run.tick(utc(2024, 3, 7, 17))
    [note] = [n for n in decision.notes if n.rule == "tiers.daily_update"]
    assert "no update from tier 2 for 16h 00m of business time" in note.body
