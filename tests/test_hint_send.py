"""A hint pass sends each target tracker's actions in a thread of its own (core/hint_send.py):
a new escalation's mirror in one tracker does not wait for a slow create in another, and the
per-record order and the no-duplicate rules still hold."""
from __future__ import annotations

import threading
import time

from connectors.memory import MemoryConnector
from core.decision import CreateMirror, Decision, RuleHit
from core.engine import CycleReport
from core.hints import run_hints
from core.model import SupportTier
from tests.engine_helpers import make_engine, partner_ticket


class RouteToBoth:
    """Every new open escalation gets a Jira and an Azure DevOps mirror, queued in that order."""

    def decide(self, before, after, observation, now) -> Decision:
        decision = Decision()
        if after.routing_rule is None and after.state.is_open:
            decision.changes.update(routing_rule="tier2", queue="Marketplace Experience",
                                    tier=SupportTier.L2)
            for name in ("jira", "azure_devops"):  # Jira queued first
                if after.link_for(name) is None:
                    decision.mirrors.append(CreateMirror(name, "routing.tier2"))
            decision.hits.append(RuleHit("routing", "tier2"))
        return decision


class SlowCreate(MemoryConnector):
    """A tracker whose creates wait until the test lets them go."""

    def __init__(self, name):
        super().__init__(name)
        self.go = threading.Event()
        self.waiting = threading.Event()

    def create(self, fields, *, idempotency_key, origin=None):
        self.waiting.set()
        assert self.go.wait(10), "the test never let the create go"
        return super().create(fields, idempotency_key=idempotency_key, origin=origin)


def engine_with(tmp_path):
    trackers = {"zendesk": MemoryConnector("zendesk"), "azure_devops": MemoryConnector("azure_devops"),
                "jira": SlowCreate("jira")}
    engine, t = make_engine(tmp_path / "s.db", trackers, policy=RouteToBoth())
    ticket = t["zendesk"].put(partner_ticket())
    return engine, t, ticket


def test_a_slow_create_in_one_tracker_does_not_hold_back_the_mirror_in_another(tmp_path):
    engine, t, ticket = engine_with(tmp_path)
    done: list[CycleReport] = []
    hint = threading.Thread(target=lambda: done.append(run_hints(engine, {"zendesk": [ticket.id]})))
    hint.start()
    try:
        assert t["jira"].waiting.wait(10)  # Jira's create is on its way, and stuck
        deadline = time.monotonic() + 10
        while not t["azure_devops"].records and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(t["azure_devops"].records) == 1  # created while Jira's create still waits
        assert not t["jira"].records
    finally:
        t["jira"].go.set()
        hint.join(10)
    assert len(t["jira"].records) == 1 and len(t["azure_devops"].records) == 1
    assert done[0].actions_done >= 2  # both trackers' counts are in the pass's report


def test_a_second_hint_for_the_record_sends_nothing_twice(tmp_path):
    engine, t, ticket = engine_with(tmp_path)
    t["jira"].go.set()
    run_hints(engine, {"zendesk": [ticket.id]})
    run_hints(engine, {"zendesk": [ticket.id]})
    assert [c[0] for c in t["azure_devops"].calls].count("create") == 1
    assert [c[0] for c in t["jira"].calls].count("create") == 1
    with engine.store.transaction() as tx:
        assert not engine.store.pending_create(tx, engine.store.links_for(
            tx, "zendesk", [ticket.id])[ticket.id].escalation_id, "jira")
