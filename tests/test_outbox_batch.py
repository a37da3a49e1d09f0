"""The outbox's batched waves: notes of a wave committed before its first send, what landed
recorded together, one action's failure recorded for it alone (core/outbox_batch.py)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import event

from connectors.memory import MemoryConnector
from core.errors import NotFound, Retryable
from core.outbox_batch import waves
from core.store import OutboxRow
from tests.engine_helpers import make_engine, partner_ticket


class WatchedTracker(MemoryConnector):
    """Azure DevOps in memory that, at each create, reads what the store holds, and fails the
    creates whose title is in ``failing``."""

    def __init__(self, name: str):
        super().__init__(name)
        self.store = None
        self.noted_at_create: list[int] = []  # creates noted as sent in the store, at each create
        self.failing: dict[str, Exception] = {}

    def create(self, fields, *, idempotency_key, origin=None):
        with self.store.transaction() as tx:
            noted = [a for a in self.store.actions(tx, state="pending")
                     if a.kind == "create" and a.connector == self.name and a.sent]
        self.noted_at_create.append(len(noted))
        title = fields.get("System.Title", "")
        if title in self.failing:
            raise self.failing[title]
        return super().create(fields, idempotency_key=idempotency_key, origin=origin)


def engine_with(tmp_path, count: int):
    trackers = {"zendesk": MemoryConnector("zendesk"), "azure_devops": WatchedTracker("azure_devops")}
    engine, t = make_engine(tmp_path / "s.db", trackers)
    t["azure_devops"].store = engine.store
    for n in range(count):
        t["zendesk"].put(partner_ticket(subject=f"1234567890123{n % 10} - case {n}"))
    return engine, t


def mirrors(engine) -> dict[str, list]:
    with engine.store.transaction() as tx:
        return {a.escalation_id: a for a in engine.store.actions(tx) if a.kind == "create"}


def test_every_create_of_a_wave_is_noted_before_the_first_is_sent(tmp_path):
    engine, t = engine_with(tmp_path, 12)
    engine.run_cycle()
    # the batch lookup found none of the keys; each create went out after all twelve notes
    assert t["azure_devops"].noted_at_create == [12] * 12
    assert len(t["azure_devops"].records) == 12
    assert all(a.state == "done" for a in mirrors(engine).values())


def test_a_wave_commits_its_bookkeeping_in_a_few_transactions(tmp_path):
    engine, t = engine_with(tmp_path, 20)
    commits = []
    event.listen(engine.store.engine, "commit", lambda conn: commits.append(1))
    engine.pull("zendesk", _report(engine), lambda: False)
    commits.clear()
    from core.outbox import OutboxApplier
    OutboxApplier(engine).apply(_report(engine), lambda: False, connector="azure_devops")
    assert len(t["azure_devops"].records) == 20
    # claim, rate check, reads, notes, landed, pending check, release: not one per action
    # (the watching tracker's own read at each create is not the outbox's)
    assert len(commits) - len(t["azure_devops"].noted_at_create) <= 10, len(commits)


def test_one_failure_leaves_the_others_landed(tmp_path):
    engine, t = engine_with(tmp_path, 6)
    t["azure_devops"].failing = {"12345678901232 - case 2": Retryable("busy", tracker="azure_devops"),
                                 "12345678901234 - case 4": NotFound("gone", tracker="azure_devops")}
    report = engine.run_cycle()
    assert len(t["azure_devops"].records) == 4
    states = sorted((a.state, a.attempts) for a in mirrors(engine).values())
    assert states == [("dead", 1)] + [("done", 0)] * 4 + [("pending", 1)]
    assert report.actions_retrying == 1 and report.actions_dead == 1
    with engine.store.transaction() as tx:  # the four created ones are linked
        links = [l for ls in engine.store.links_of(tx, list(mirrors(engine))).values() for l in ls
                 if l.tracker == "azure_devops"]
    assert len(links) == 4


def test_waves_hold_one_action_per_escalation_in_id_order():
    def row(id_, esc):
        return OutboxRow(id=id_, escalation_id=esc, connector="jira", kind="update", remote_id="1",
                         payload={}, dedupe_key=str(id_), rule=None, state="pending", attempts=0,
                         next_attempt_at=datetime(2026, 3, 2, tzinfo=timezone.utc), last_error=None)
    batch = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "c"), row(5, "a"), row(6, "b")]
    assert [[a.id for a in wave] for wave in waves(batch)] == [[1, 2, 4], [3, 6], [5]]


def _report(engine):
    from core.engine import CycleReport
    return CycleReport(run_id="test")
