"""The page as a pipeline (core/page_read.py, core/page_write.py): a fixed number of statements
per page whatever its size, a failing record taken back without touching the others, and the
history's reverse patch (core/history.py) turning each version back into the one before."""
from __future__ import annotations

import random

import jsonpatch
from sqlalchemy import event, func, select

from connectors.memory import MemoryConfig, MemoryConnector
from core import schema as t
from core.decision import CreateMirror
from core.engine import CycleReport
from core.history import reverse_patch
from core.planner import escalation_id_for
from tests.engine_helpers import RouteToTier2, make_engine, partner_ticket


def _engine(tmp_path, name: str, policy=None):
    trackers = {"zendesk": MemoryConnector("zendesk", MemoryConfig(mapping="zendesk", page_size=500)),
                "azure_devops": MemoryConnector("azure_devops")}
    return make_engine(tmp_path / f"{name}.db", trackers=trackers, policy=policy)


def _pull_statements(tmp_path, n: int) -> int:
    engine, trackers = _engine(tmp_path, f"n{n}")
    for i in range(n):
        trackers["zendesk"].put(partner_ticket(subject=f"{10_000_000_000_000 + i} - Case {i}"))
    seen = []
    event.listen(engine.store.engine, "before_cursor_execute", lambda *args: seen.append(1))
    report = CycleReport(run_id="run-test")
    engine.pull("zendesk", report, lambda: False)
    assert report.opened == n
    return len(seen)


def test_a_page_costs_the_same_statements_whatever_its_size(tmp_path):
    # 5 and 40 escalations opened in one page each, every one with its mirror create queued
    assert _pull_statements(tmp_path, 40) == _pull_statements(tmp_path, 5)


class FailsOn(RouteToTier2):
    """Routes like RouteToTier2; for the ticket whose subject holds "boom" it asks for a mirror
    with extra fields that are no mapping, so planning fails after the escalation, its link and
    its audit entry were written to the page."""

    def decide(self, before, after, observation, now):
        decision = super().decide(before, after, observation, now)
        if "boom" in after.title:
            decision.mirrors.append(CreateMirror("azure_devops", "routing.tier2", fields=42))
        return decision


def test_a_record_failing_late_leaves_nothing_and_the_page_goes_on(tmp_path):
    engine, trackers = _engine(tmp_path, "late", policy=FailsOn())
    zendesk = trackers["zendesk"]
    good = [zendesk.put(partner_ticket(subject=f"1111111111111{i} - Case {i}")) for i in (1, 2)]
    bad = zendesk.put(partner_ticket(subject="33333333333333 - boom"))
    last = zendesk.put(partner_ticket(subject="44444444444444 - Case 4"))
    report = CycleReport(run_id="run-test")
    engine.pull("zendesk", report, lambda: False)
    assert (report.opened, report.quarantined) == (3, 1)
    bad_id = escalation_id_for("zendesk", bad.id)
    with engine.store.transaction() as tx:
        for table in (t.escalations, t.changes, t.history):
            column = table.c.id if table is t.escalations else table.c.escalation_id
            assert tx.execute(select(func.count()).where(column == bad_id)).scalar() == 0
        assert tx.execute(select(func.count()).where(t.links.c.remote_id == bad.id)).scalar() == 0
        assert tx.execute(select(func.count()).where(t.outbox.c.escalation_id == bad_id)).scalar() == 0
        assert tx.execute(select(func.count()).where(t.audit.c.escalation_id == bad_id)).scalar() == 0
        held = engine.store.quarantined(tx)
        assert [row["remote_id"] for row in held] == [bad.id]
        assert "unexpected TypeError" in held[0]["reason"]
        for record in good + [last]:
            eid = escalation_id_for("zendesk", record.id)
            assert engine.store.get_escalation(tx, eid) is not None
            assert engine.store.pending_create(tx, eid, "azure_devops") is not None


def _value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 2 or roll < 0.4:
        return rng.choice([0, 1, True, False, None, "a", "b/c", "~d", 1.5])
    if roll < 0.7:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["a", "b/c", "d~e"]): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def test_reverse_patch_turns_each_version_back_into_the_one_before():
    rng = random.Random(11)
    for _ in range(3000):
        old = {key: _value(rng) for key in "abcd" if rng.random() < 0.8}
        new = dict(old)
        for key in list(new):
            if rng.random() < 0.3:
                new[key] = _value(rng)
            elif isinstance(new[key], list) and rng.random() < 0.5:
                new[key] = new[key] + [_value(rng)]  # a comment or link added
        if rng.random() < 0.2:
            new["z"] = _value(rng)
        back = jsonpatch.apply_patch(new, reverse_patch(new, old))
        assert back == old and all(type(back[k]) is type(old[k]) for k in old)
    # a comment added is taken back by removing it, not by rewriting the list
    assert reverse_patch({"comments": [1, 2, 3]}, {"comments": [1]}) == [
        {"op": "remove", "path": "/comments/2"}, {"op": "remove", "path": "/comments/1"}]
