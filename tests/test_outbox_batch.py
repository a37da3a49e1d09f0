"""The outbox's waves (core/outbox_batch.py): each action noted as sent immediately before its own
send, the previous one's landing committed with that note, so a crash mid-wave leaves at most
the action in flight of unknown fate; one action's failure, or an unexpected exception, is
recorded for it alone."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
from sqlalchemy import event

from connectors.memory import MemoryConnector
from core.engine import CycleReport
from core.errors import NotFound, RateLimited, Retryable
from core.outbox import OutboxApplier
from core.outbox_batch import waves
from core.store import OutboxRow
from tests.engine_helpers import make_engine, partner_ticket


class Crash(BaseException):
    """The process dying (SIGKILL) at this point: nothing of it is caught or recorded."""


class WatchedTracker(MemoryConnector):
    """Azure DevOps in memory that, at each create, reads what the store holds; the creates
    whose title is in ``failing`` raise their exception (before the record is made), those in
    ``crash_after`` end the process once the record is made."""

    def __init__(self, name: str):
        super().__init__(name)
        self.store = None
        self.at_create: list[tuple[int, int]] = []  # (creates noted and pending, creates done)
        self.failing: dict[str, BaseException] = {}
        self.crash_after: set[str] = set()

    def create(self, fields, *, idempotency_key, origin=None):
        with self.store.transaction() as tx:
            creates = [a for a in self.store.actions(tx) if a.kind == "create"]
        self.at_create.append((sum(a.state == "pending" and a.sent is not None for a in creates),
                               sum(a.state == "done" for a in creates)))
        title = fields.get("System.Title", "")
        if title in self.failing:
            raise self.failing[title]
        record = super().create(fields, idempotency_key=idempotency_key, origin=origin)
        if title in self.crash_after:
            raise Crash(title)
        return record


def engine_with(tmp_path, count: int, db: str = "s.db"):
    trackers = {"zendesk": MemoryConnector("zendesk"), "azure_devops": WatchedTracker("azure_devops")}
    engine, t = make_engine(tmp_path / db, trackers)
    t["azure_devops"].store = engine.store
    for n in range(count):
        t["zendesk"].put(partner_ticket(subject=f"1234567890123{n % 10} - case {n}"))
    return engine, t


def creates(engine) -> dict[str, OutboxRow]:
    with engine.store.transaction() as tx:
        return {a.escalation_id: a for a in engine.store.actions(tx) if a.kind == "create"}


def test_each_create_is_noted_just_before_its_own_send_and_the_one_before_has_landed(tmp_path):
    engine, t = engine_with(tmp_path, 12)
    engine.run_cycle()
    # at the k-th create: only it is noted as sent, the k - 1 before it are recorded as done
    assert t["azure_devops"].at_create == [(1, k) for k in range(12)]
    assert len(t["azure_devops"].records) == 12
    assert all(a.state == "done" for a in creates(engine).values())


def test_a_wave_commits_about_one_transaction_per_action(tmp_path):
    engine, t = engine_with(tmp_path, 20)
    commits = []
    event.listen(engine.store.engine, "commit", lambda conn: commits.append(1))
    engine.pull("zendesk", CycleReport(run_id="test"), lambda: False)
    commits.clear()
    OutboxApplier(engine).apply(CycleReport(run_id="test"), lambda: False, connector="azure_devops")
    assert len(t["azure_devops"].records) == 20
    # per create: its note with the previous one's landing; per batch: the claim, the rate
    # check, the wave's reads, the last landing, the pending check, the release (the watching
    # tracker's own read at each create is not the outbox's). One by one it was 3 or 4 each.
    outbox_commits = len(commits) - len(t["azure_devops"].at_create)
    assert outbox_commits <= 20 + 8, outbox_commits


def test_a_crash_mid_wave_leaves_only_the_action_in_flight_of_unknown_fate(tmp_path):
    engine, t = engine_with(tmp_path, 8)
    tracker = t["azure_devops"]
    tracker.crash_after = {"12345678901234 - case 4"}  # created there, then the process dies
    with pytest.raises(Crash):
        engine.run_cycle()
    rows = creates(engine).values()
    unknown = [a for a in rows if a.state == "pending" and a.sent is not None]
    assert len(unknown) == 1 and unknown[0].payload["fields"]["System.Title"].endswith("case 4")
    assert sum(a.state == "done" for a in rows) == 4  # the four sent before it landed
    assert sum(a.state == "pending" and a.sent is None for a in rows) == 3  # as queued
    # a new process on the same store and trackers: no duplicate, every mirror linked once
    tracker.crash_after = set()
    again, _ = make_engine(tmp_path / "s.db", t)
    again.run_cycle()
    assert len(tracker.records) == 8
    assert sorted(r.idempotency_key for r in tracker.records.values()) == \
        sorted(a.dedupe_key for a in creates(again).values())
    assert all(a.state == "done" for a in creates(again).values())


def test_a_rate_limit_between_sends_leaves_the_rest_of_the_wave_as_queued(tmp_path):
    engine, t = engine_with(tmp_path, 6)
    t["azure_devops"].failing = {"12345678901232 - case 2": RateLimited(
        "slow down", retry_after=30.0, tracker="azure_devops")}
    engine.run_cycle()
    rows = sorted(creates(engine).values(), key=lambda a: a.id)
    assert [a.state for a in rows] == ["done", "done", "pending", "pending", "pending", "pending"]
    # the refused one may have gone out; the three after it were never sent, nor noted as sent
    # (the reverted waves noted them all before the first send: each then paid the recovery
    # of a write of unknown fate)
    assert [a.sent is not None for a in rows[2:]] == [True, False, False, False]
    assert len(t["azure_devops"].records) == 2


def test_one_failure_leaves_the_others_landed(tmp_path):
    engine, t = engine_with(tmp_path, 6)
    t["azure_devops"].failing = {"12345678901232 - case 2": Retryable("busy", tracker="azure_devops"),
                                 "12345678901234 - case 4": NotFound("gone", tracker="azure_devops")}
    report = engine.run_cycle()
    assert len(t["azure_devops"].records) == 4
    states = sorted((a.state, a.attempts) for a in creates(engine).values())
    assert states == [("dead", 1)] + [("done", 0)] * 4 + [("pending", 1)]
    assert report.actions_retrying == 1 and report.actions_dead == 1
    with engine.store.transaction() as tx:  # the four created ones are linked
        links = [l for ls in engine.store.links_of(tx, list(creates(engine))).values() for l in ls
                 if l.tracker == "azure_devops"]
    assert len(links) == 4


def test_an_unexpected_exception_is_that_actions_retry_then_dead_letter(tmp_path, caplog):
    engine, t = engine_with(tmp_path, 5)
    bug = "12345678901233 - case 3"
    t["azure_devops"].failing = {bug: KeyError("System.Id")}  # a bug, not a connector error
    with caplog.at_level(logging.ERROR, logger="tiersync.outbox"):
        report = engine.run_cycle()  # the pass goes on: the others are created
    assert len(t["azure_devops"].records) == 4 and report.actions_retrying == 1
    failed = next(a for a in creates(engine).values()
                  if a.payload["fields"]["System.Title"] == bug)
    assert failed.state == "pending" and failed.attempts == 1
    assert "unexpected KeyError" in failed.last_error
    logged = [r for r in caplog.records if "unexpected KeyError" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # with its traceback
    for _ in range(engine.settings.max_attempts):  # after the usual attempts: a dead letter
        engine.clock.advance(seconds=engine.settings.max_backoff_seconds + 1)
        engine.run_cycle()
    failed = creates(engine)[failed.escalation_id]
    assert failed.state == "dead" and "unexpected KeyError" in failed.last_error
    assert len(t["azure_devops"].records) == 4


def test_an_unexpected_exception_in_apply_one_is_recorded_for_that_action(tmp_path):
    engine, t = engine_with(tmp_path, 2)
    engine.pull("zendesk", CycleReport(run_id="test"), lambda: False)
    t["azure_devops"].failing = {"12345678901230 - case 0": ZeroDivisionError("boom")}
    applier, report = OutboxApplier(engine), CycleReport(run_id="test")
    for action in sorted(creates(engine).values(), key=lambda a: a.id):
        applier.apply_one(action, report)  # the hint thread's way: one by one
    states = sorted((a.state, a.attempts) for a in creates(engine).values())
    assert states == [("done", 0), ("pending", 1)] and report.actions_retrying == 1


def test_waves_hold_one_action_per_escalation_in_id_order():
    def row(id_, esc):
        return OutboxRow(id=id_, escalation_id=esc, connector="jira", kind="update", remote_id="1",
                         payload={}, dedupe_key=str(id_), rule=None, state="pending", attempts=0,
                         next_attempt_at=datetime(2026, 3, 2, tzinfo=timezone.utc), last_error=None)
    batch = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "c"), row(5, "a"), row(6, "b")]
    assert [[a.id for a in wave] for wave in waves(batch)] == [[1, 2, 4], [3, 6], [5]]
