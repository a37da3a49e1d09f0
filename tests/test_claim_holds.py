"""Inside one process a lane and the hint pass claim under the same worker id: a claim is
released only when the last thread holding it lets it go (core/shared.py). Before, a lane's
release freed an action a hint pass of the same daemon still held and was about to send, so
another daemon could claim and send it too (a candidate cause of the comments copied twice in
the three-daemon chaos run with webhooks)."""
from __future__ import annotations

from sqlalchemy import text

from core import leases
from core.engine import CycleReport
from core.shared import claim, release
from tests.engine_helpers import make_engine, partner_ticket


def queued(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    ticket = t["zendesk"].put(partner_ticket())
    with engine.store.transaction() as tx:
        engine.process_records(tx, "zendesk", [t["zendesk"].get(ticket.id)], CycleReport("r0"))
    return engine


def holder_of(engine, action_id):
    with engine.store.transaction() as tx:
        return tx.execute(text("SELECT claimed_by FROM outbox WHERE id = :id"), {"id": action_id}).scalar()


def test_a_claim_held_by_two_threads_of_a_process_stays_until_both_let_go(tmp_path):
    engine = queued(tmp_path)
    now = engine.clock()
    with engine.store.transaction() as tx:
        hint = claim(tx, engine.worker_id, now, 100)  # the hint pass claims the create
    with engine.store.transaction() as tx:
        lane = claim(tx, engine.worker_id, now, 100)  # the lane claims it too (it is ours)
    assert hint and [a.id for a in lane] == [a.id for a in hint]
    action_id = hint[0].id
    with engine.store.transaction() as tx:
        release(tx, engine.worker_id, [action_id])  # the lane's pass ends
    assert holder_of(engine, action_id) == engine.worker_id  # the hint pass still holds it
    with engine.store.transaction() as tx:
        release(tx, engine.worker_id, [action_id])
    assert holder_of(engine, action_id) is None  # free for any daemon now


def test_another_worker_cannot_take_what_one_thread_still_holds(tmp_path):
    engine = queued(tmp_path)
    now = engine.clock()
    with engine.store.transaction() as tx:
        assert leases.acquire(tx, f"worker:{engine.worker_id}", engine.worker_id, 60, now)
        first = claim(tx, engine.worker_id, now, 100)
        claim(tx, engine.worker_id, now, 100)
        release(tx, engine.worker_id, [a.id for a in first])  # one of the two threads is done
        assert claim(tx, "other-daemon", now, 100) == []  # our worker lives and still holds it
        release(tx, engine.worker_id, [a.id for a in first])
        assert [a.id for a in claim(tx, "other-daemon", now, 100)] == [a.id for a in first]
