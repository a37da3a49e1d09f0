"""The periodic pass decides what is due, kept in the store (core/due.py), with the shipped policy.

Times: Tuesday 2026-03-03 19:00 UTC is 11:00 Pacific. A Sev2 Enterprise escalation routed then
has its acknowledgement due at 20:00, its warning at 19:45.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, text, update

from connectors.memory import MemoryConnector
from core import due
from core import schema as t
from core.engine import SyncEngine
from core.mapping import load_mapping
from core.policy import load_policy
from core.policy.config import parse_policy
from core.policy.escalation_policy import EscalationPolicy
from core.store import Store
from tests.engine_helpers import MAPPINGS, Clock, partner_ticket

T0 = datetime(2026, 3, 3, 19, 0, tzinfo=timezone.utc)
WARNING, BREACH = datetime(2026, 3, 3, 19, 45, tzinfo=timezone.utc), datetime(2026, 3, 3, 20, 0, tzinfo=timezone.utc)
NAMES = ("zendesk", "azure_devops", "jira")


class Counting:
    """The shipped policy, counting the escalations it is asked about."""

    def __init__(self, policy: EscalationPolicy):
        self.policy, self.asked = policy, []
        self.fingerprint = policy.fingerprint

    def decide(self, before, after, observation, now):
        self.asked.append(after.id)
        return self.policy.decide(before, after, observation, now)

    def next_decision_at(self, escalation, now):
        return self.policy.next_decision_at(escalation, now)


def ticket(n: int) -> dict:
    return partner_ticket(**{
        "subject": f"1234567890{n:04d} - case {n}", "custom_fields.360010000001": f"1234567890{n:04d}",
        "organization.name": "Contoso Ltd", "custom_fields.360010000008": "SELLER-1",
        "custom_fields.360010000017": "Pat Doe", "custom_fields.360010000018": "pat@contoso.example",
        "custom_fields.360010000014": "scope_cloud"})


def engine_over(db: str, clock: Clock, trackers: dict, policy=None) -> SyncEngine:
    store = Store(db)
    store.migrate()
    mappings = {name: load_mapping(MAPPINGS / f"{name}.yaml") for name in trackers}
    policy = policy or Counting(load_policy(MAPPINGS / "policy.yaml"))
    return SyncEngine(store, trackers, mappings, policy, clock=clock)


def opened(tmp_path, count: int = 3, db: str | None = None):
    clock = Clock(T0)
    trackers = {name: MemoryConnector(name) for name in NAMES}
    for tracker in trackers.values():
        tracker.clock = T0 - timedelta(minutes=1)
    for n in range(count):
        trackers["zendesk"].put(ticket(n))
    db = db or f"sqlite:///{tmp_path / 'store.db'}"
    engine = engine_over(db, clock, trackers)
    engine.run_cycle()  # opened, mirrors created: the link written makes each due again
    engine.run_cycle()  # decided again with its mirror
    return engine, clock, trackers, db


def schedule(engine: SyncEngine) -> dict[str, datetime | None]:
    with engine.store.transaction() as tx:
        rows = tx.execute(select(t.escalations.c.id, t.escalations.c.next_decision_at)).all()
    return dict(rows)


def periodic(engine: SyncEngine) -> list[str]:
    engine.policy.asked.clear()
    engine.run_cycle()
    return list(engine.policy.asked)


def test_an_opened_escalation_stores_its_next_decision(tmp_path):
    engine, clock, _, _ = opened(tmp_path)
    assert set(schedule(engine).values()) == {WARNING}
    assert periodic(engine) == []  # the same instant: nothing due


def test_nothing_due_nothing_decided_also_in_a_fresh_process(tmp_path):
    engine, clock, trackers, db = opened(tmp_path)
    clock.advance(minutes=10)
    assert periodic(engine) == []
    fresh = engine_over(db, clock, trackers)  # a process start: nothing held in memory
    assert periodic(fresh) == []


def test_at_the_warning_each_is_decided_once_and_the_breach_is_next(tmp_path):
    engine, clock, trackers, db = opened(tmp_path)
    fresh = engine_over(db, clock, trackers)
    clock.now = WARNING
    assert len(periodic(fresh)) == 3
    assert set(schedule(fresh).values()) == {BREACH}
    notes = [c for c in trackers["azure_devops"].calls if c[0] == "comment"]
    assert len(notes) == 3  # one SLA warning each, written back once
    clock.advance(minutes=5)
    assert periodic(fresh) == []


def test_a_change_in_a_tracker_reschedules_from_the_new_state(tmp_path):
    engine, clock, trackers, _ = opened(tmp_path, count=1)
    [(eid, _)] = schedule(engine).items()
    [mirror] = [rid for rid in trackers["azure_devops"].records]
    clock.now = T0 + timedelta(minutes=30)
    trackers["azure_devops"].clock = clock.now
    trackers["azure_devops"].edit(mirror, **{"System.State": "Actively Working"})
    engine.run_cycle()
    with engine.store.transaction() as tx:
        current = engine.store.get_escalation(tx, eid).escalation
    assert current.state.value == "actively_working"
    expected = engine.policy.next_decision_at(current, clock.now)
    assert schedule(engine)[eid] == expected and expected > WARNING


def test_other_rules_make_every_open_escalation_due_once(tmp_path):
    engine, clock, trackers, db = opened(tmp_path)
    clock.advance(minutes=1)
    data = load_policy(MAPPINGS / "policy.yaml").config.model_dump(mode="json")
    data["sla"]["warning_at"] = 0.5
    changed = Counting(EscalationPolicy(parse_policy(data, "<test>"), "<test>"))
    fresh = engine_over(db, clock, trackers, policy=changed)
    assert len(periodic(fresh)) == 3
    assert set(schedule(fresh).values()) == {T0 + timedelta(minutes=30)}  # 50 % of the hour
    assert periodic(fresh) == []


def test_a_plain_write_makes_the_escalation_due(tmp_path):
    engine, clock, _, _ = opened(tmp_path, count=1)
    [(eid, _)] = schedule(engine).items()
    with engine.store.transaction() as tx:
        stored = engine.store.get_escalation(tx, eid)
        version = stored.escalation.version
        later = stored.escalation.model_copy(update={"version": version + 1, "updated_at": clock.now})
        engine.store.save_escalation(tx, later, stored.field_times, by="test", run_id=None,
                                     previous_version=version)
    assert schedule(engine)[eid] == clock.now
    assert periodic(engine) == [eid]


def test_migration_makes_open_escalations_due_at_their_last_update(tmp_path):
    engine, clock, _, _ = opened(tmp_path, count=2)
    first, second = sorted(schedule(engine))
    with engine.store.transaction() as tx:
        tx.execute(update(t.escalations).values(next_decision_at=None))
        tx.execute(update(t.escalations).where(t.escalations.c.id == second).values(state="closed"))
        due.migrate(tx)  # again, as on a store from before the column: idempotent
        updated = tx.execute(select(t.escalations.c.updated_at)
                             .where(t.escalations.c.id == first)).scalar()
    assert schedule(engine) == {first: updated, second: None}


def test_the_due_query_is_an_index_range_scan(tmp_path):
    engine, clock, _, _ = opened(tmp_path, count=1)
    with engine.store.transaction() as tx:
        plan = tx.execute(text("EXPLAIN QUERY PLAN SELECT id FROM escalations WHERE "
                               "next_decision_at <= '2026-03-03 19:00:00' AND state NOT IN "
                               "('closed', 'rejected') ORDER BY next_decision_at")).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_escalations_next_decision" in details and "SCAN escalations" not in details
