"""``tiersync status`` rows and ``tiersync explain`` lines (pure functions)."""
from core.decision import Observation
from core.policy import explain, status_rows
from tests.fixtures.policy.builders import Run, escalation, shipped_policy, utc

T0 = utc(2024, 3, 5, 17)  # Tuesday 09:00 PST


def board(now):
    ok = Run(escalation(sr_number="111111111111111"))
    ok.open(T0)
    warned = Run(escalation(sr_number="222222222222222", support_plan="professional"))
    warned.open(T0)
    paused = Run(escalation(sr_number="333333333333333"))
    paused.open(utc(2024, 3, 5, 16))
    paused.observe("azure_devops", utc(2024, 3, 5, 17), state="waiting_on_customer")
    closed = Run(escalation(sr_number="444444444444444"))
    closed.open(T0)
    closed.observe("azure_devops", utc(2024, 3, 5, 17, 10), state="actively_working")
    closed.observe("zendesk", utc(2024, 3, 5, 17, 20), state="closed")
    escalations = [closed.esc, ok.esc, paused.esc, warned.esc]
    return {row["sr_number"]: row for row in status_rows(escalations, shipped_policy(), now)}, \
        status_rows(escalations, shipped_policy(), now)


def test_status_evaluates_the_sla_at_now():
    rows, ordered = board(utc(2024, 3, 5, 18, 40))  # 10:40 PST, no sync since routing
    ok, warned = rows["111111111111111"], rows["222222222222222"]
    assert ok["sla"]["acknowledgement"]["status"] == "breached"  # 1 h target, due 10:00
    assert ok["sla"]["acknowledgement"]["remaining_seconds"] == -40 * 60
    assert warned["sla"]["acknowledgement"]["status"] == "warning"  # 2 h target, 20 m left
    assert warned["sla"]["acknowledgement"]["remaining_seconds"] == 20 * 60
    assert warned["flag"] == "warning" and ok["flag"] == "breached"
    assert [row["sr_number"] for row in ordered][-1] == "444444444444444"  # closed last


def test_status_row_contents():
    rows, _ = board(utc(2024, 3, 5, 18, 40))
    paused, closed = rows["333333333333333"], rows["444444444444444"]
    assert paused["sla"]["first_solution"]["status"] == "paused"
    assert paused["sla"]["acknowledgement"]["status"] == "met"
    assert closed["state"] == "closed" and closed["flag"] == "met"
    assert closed["sla"]["close"]["met_at"] == utc(2024, 3, 5, 17, 20)
    assert closed["links"] == ["zendesk:101", "azure_devops:azure_devops-1"]
    assert (closed["tier"], closed["queue"], closed["sla_policy"]) == \
        ("L2", "Marketplace Experience", "business-hours")
    assert closed["sla"]["acknowledgement"]["target_hours"] == 1


def test_status_of_an_unrouted_escalation_has_no_sla():
    [row] = status_rows([escalation()], shipped_policy(), T0)
    assert row["sla"] == {} and row["flag"] is None and row["next_due_at"] is None


def test_explain_names_every_rule_family():
    run = Run(escalation(security_incident=True))
    run.open(T0)
    before = run.esc
    after = before.model_copy(update={"state": before.state.__class__("actively_working")})
    obs = Observation(tracker="azure_devops", remote_id="1", changes={"state": "actively_working"},
                      updated_at=utc(2024, 3, 5, 17, 30))
    lines = explain(before, after, obs, shipped_policy(), utc(2024, 3, 5, 17, 30))
    text = "\n".join(lines)
    assert "observation: azure_devops 1 changed ['state']" in text
    assert "validation: passed" in text
    assert "routing: first match wins -> 'security-incident'" in text
    assert "sla: policy 'business-hours'" in text
    assert "sla: acknowledgement: target 1 h" in text
    assert "escalation: a request now would be refused (too_early)" in text
    assert "tiers: held by L3" in text
    assert "fires: sla.acknowledgement.met" in text
    assert "change: sla_clock" in text


def test_explain_a_rejection():
    lines = explain(None, escalation(sr_number=None), None, shipped_policy(), T0)
    assert "validation: FAIL mandatory.escalation-basics: mandatory fields missing: sr_number" \
        in lines
    assert any(line.startswith("note to origin (public") for line in lines)


def test_remaining_time_is_frozen_while_paused():
    rows, _ = board(utc(2024, 3, 6, 18))  # a day later, still waiting on the customer
    first = rows["333333333333333"]["sla"]["first_solution"]
    assert first["status"] == "paused"
    assert first["remaining_seconds"] == 8 * 3600  # paused right when work started
