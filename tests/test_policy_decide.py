"""The policy as a whole: pure, idempotent, ordered rule families, typed model changes.

``Run`` (tests/fixtures/policy/builders.py) already checks after every decision that deciding
again on the result changes nothing; the random walks below push that through many histories.
"""
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core.decision import Observation
from core.model import Escalation, State
from core.policy import BasicPolicy, EscalationPolicy, load_policy
from tests.fixtures.policy.builders import SHIPPED, Run, escalation, shipped_policy, utc

T0 = utc(2024, 3, 5, 17)
TRACKERS = ("zendesk", "azure_devops", "jira")

steps = st.one_of(
    st.tuples(st.just("state"), st.sampled_from(TRACKERS),
              st.sampled_from([s.value for s in State if s is not State.REJECTED])),
    st.tuples(st.just("tick"), st.just(None), st.none()),
    st.tuples(st.just("escalate"), st.just("zendesk"), st.integers(1, 4)),
    st.tuples(st.just("severity"), st.just("zendesk"), st.integers(1, 4)),
    st.tuples(st.just("comment"), st.sampled_from(TRACKERS), st.just("update")),
    st.tuples(st.just("security"), st.just("zendesk"), st.booleans()),
)


@settings(max_examples=40, deadline=None)
@given(history=st.lists(st.tuples(steps, st.integers(1, 60 * 30)), min_size=1, max_size=10),
       plan=st.sampled_from(["professional", "enterprise"]))
def test_any_history_is_idempotent_and_valid(history, plan):
    run = Run(escalation(support_plan=plan))
    now = T0
    run.open(now)
    for (kind, tracker, value), minutes in history:
        now += timedelta(minutes=minutes)
        if kind == "tick":
            run.tick(now)
        elif kind == "comment":
            run.observe(tracker, now, comments=(value,))
        else:
            field = {"state": "state", "escalate": "escalation_requested",
                     "severity": "severity", "security": "security_incident"}[kind]
            run.observe(tracker, now, **{field: value})
        Escalation.model_validate(run.esc.model_dump())  # every change validates
        assert run.esc.escalation_level <= 4


def test_same_inputs_same_decision():
    policy = shipped_policy()
    before = escalation()
    after = before.model_copy(update={"state": State.ACTIVELY_WORKING})
    obs = Observation(tracker="azure_devops", remote_id="1", changes={"state": "x"},
                      updated_at=T0)
    assert policy.decide(before, after, obs, T0) == policy.decide(before, after, obs, T0)


def test_decide_does_not_mutate_its_inputs():
    policy = shipped_policy()
    esc = escalation()
    frozen = esc.model_dump()
    policy.decide(None, esc, None, T0 + timedelta(days=3))
    assert esc.model_dump() == frozen


def test_naive_observation_time_is_taken_as_utc():
    run = Run()
    obs = Observation(tracker="zendesk", remote_id="1", changes={"title": "x"},
                      updated_at=T0.replace(tzinfo=None), opened=True)
    decision = run.policy.decide(None, run.esc, obs, T0 + timedelta(minutes=5))
    assert decision.changes["routed_at"] == T0


def test_a_rejection_stops_the_later_rule_families():
    esc = escalation(sr_number=None, escalation_requested=1)
    decision = shipped_policy().decide(None, esc, None, T0)
    assert {hit.family for hit in decision.hits} == {"validation"}


def test_load_policy_keeps_the_spine_interface():
    policy = load_policy(SHIPPED)
    assert isinstance(policy, EscalationPolicy) and BasicPolicy is EscalationPolicy
    assert callable(policy.decide)
