"""Leases and outbox claims (core/leases.py, core/shared.py) on SQLite and, when given, PostgreSQL."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from core import leases
from core.shared import claim, release, stale_claims
from core.store import Store

from tests.pg import URL as PG

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
BACKENDS = ["sqlite"] + (["postgresql"] if PG or os.environ.get("CI") else [])


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'claims.db'}"
    else:
        engine = create_engine(PG)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        url = PG
    store = Store(url)
    store.migrate()
    store.serialize_writes = True
    yield store
    store.close()


def _queue(store: Store, escalation: str, connector: str, kind: str, now=NOW) -> int:
    with store.transaction() as tx:
        return store.enqueue(tx, escalation_id=escalation, connector=connector, kind=kind,
                             payload={"fields": {}}, now=now)


def _claim(store: Store, worker: str, now=NOW, **kwargs) -> list[int]:
    with store.transaction() as tx:
        return [a.id for a in claim(tx, worker, now, 100, **kwargs)]


def _live(store: Store, worker: str, now=NOW, seconds=15.0) -> None:
    with store.transaction() as tx:
        assert leases.acquire(tx, leases.WORKER + worker, worker, seconds, now)


def _claimer(tx, action: int) -> str | None:
    return tx.execute(text("SELECT claimed_by FROM outbox WHERE id = :i"), {"i": action}).scalar()


def test_one_record_s_actions_go_to_one_worker_in_order(store):
    first, second = _queue(store, "E1", "jira", "create"), _queue(store, "E1", "jira", "comment")
    other = _queue(store, "E2", "jira", "update")
    _live(store, "A")
    _live(store, "B")
    assert _claim(store, "A", connector="jira") == [first, second, other]
    assert _claim(store, "B") == []  # all in flight on A, whose lease lives


def test_later_actions_wait_for_an_earlier_one_in_flight_elsewhere_or_backing_off(store):
    first = _queue(store, "E1", "jira", "update")
    later = _queue(store, "E1", "jira", "comment")
    elsewhere = _queue(store, "E1", "zendesk", "comment")  # another record of the escalation
    _live(store, "A")
    _live(store, "B")
    assert _claim(store, "A", connector="jira") == [first, later]
    with store.transaction() as tx:  # A retries the first later and hands the rest back
        store.finish_action(tx, first, "pending", NOW, attempts=1,
                            next_attempt_at=NOW + timedelta(seconds=30))
        release(tx, "A")
    assert _claim(store, "B") == [elsewhere]  # the comment waits behind the backing-off update
    # once due, the update and its comment follow (and B's own claim is B's again)
    assert _claim(store, "B", now=NOW + timedelta(seconds=31)) == [first, later, elsewhere]


def test_a_dead_workers_claims_are_taken_over_once_its_lease_expired(store):
    action = _queue(store, "E1", "jira", "update")
    _live(store, "A", seconds=15)
    assert _claim(store, "A") == [action]
    _live(store, "B", now=NOW + timedelta(seconds=10), seconds=60)
    assert _claim(store, "B", now=NOW + timedelta(seconds=10)) == []
    with store.transaction() as tx:
        assert stale_claims(tx, NOW + timedelta(seconds=16)) == 1
    assert _claim(store, "B", now=NOW + timedelta(seconds=16)) == [action]


def test_a_lease_has_one_holder_until_it_expires_and_is_renewed_by_its_holder(store):
    with store.transaction() as tx:
        assert leases.acquire(tx, "pull:jira", "A", 15, NOW)
        assert not leases.acquire(tx, "pull:jira", "B", 15, NOW + timedelta(seconds=5))
        assert leases.renew(tx, "A", 15, NOW + timedelta(seconds=10)) == ["pull:jira"]
        assert not leases.acquire(tx, "pull:jira", "B", 15, NOW + timedelta(seconds=20))
        assert leases.acquire(tx, "pull:jira", "B", 15, NOW + timedelta(seconds=26))
        assert leases.holders(tx, NOW + timedelta(seconds=27)) == {"pull:jira": "B"}
        assert leases.renew(tx, "A", 15, NOW + timedelta(seconds=27)) == []


def test_a_rate_limit_is_shared_and_never_shortened(store):
    with store.transaction() as tx:
        leases.note_rate_limited(tx, "zendesk", NOW + timedelta(seconds=60), "429", NOW)
        leases.note_rate_limited(tx, "zendesk", NOW + timedelta(seconds=5), "429", NOW)
        assert leases.is_blocked(tx, "zendesk", NOW + timedelta(seconds=59))
        assert not leases.is_blocked(tx, "zendesk", NOW + timedelta(seconds=61))
        assert not leases.is_blocked(tx, "jira", NOW)


def test_a_dead_workers_pulls_and_claims_pass_on_at_the_next_heartbeat_of_a_busy_worker(store):
    """Takeover within lease + one heartbeat, whatever the live daemon's cycle is doing: B's
    heartbeat (not its next cycle's balance) takes the pull leases of A, killed, and frees A's
    claim (core/worker.py ``heartbeat``)."""
    from core.worker import Worker

    now = [NOW]
    trackers = ["zendesk", "azure_devops", "jira"]
    a = Worker(store, trackers, lease_seconds=15, clock=lambda: now[0], ident="A")
    a.balance()  # A alone pulls all three, then claims an action and is killed (no release)
    action = _queue(store, "E1", "jira", "update")
    assert _claim(store, "A") == [action]
    now[0] = NOW + timedelta(seconds=5)
    b = Worker(store, trackers, lease_seconds=15, clock=lambda: now[0], ident="B")
    b.balance()  # B's cycle began: nothing free yet; from here B is busy in that cycle
    assert b.pulls() == set()
    now[0] = NOW + timedelta(seconds=10)
    b.heartbeat()  # A's lease still runs: nothing passes on
    assert b.pulls() == set() and not b.wake.is_set()
    with store.transaction() as tx:
        assert _claimer(tx, action) == "A"
    now[0] = NOW + timedelta(seconds=16)  # A's lease ran out; B's next heartbeat
    b.heartbeat()
    assert b.pulls() == set(trackers) and b.wake.is_set()
    with store.transaction() as tx:
        assert leases.holders(tx, now[0]) == {**{f"pull:{t}": "B" for t in trackers},
                                              "worker:B": "B"}
        assert _claimer(tx, action) is None
        assert stale_claims(tx, now[0]) == 0
    assert _claim(store, "B", now=now[0]) == [action]


def test_a_heartbeat_never_gives_up_a_pull_lease_a_lane_may_be_pulling(store):
    """Only the cycle's ``balance`` hands pull leases beyond the fair share back (before its
    lanes start); a heartbeat that takes over mid-cycle only takes."""
    from core.worker import Worker

    now = [NOW]
    trackers = ["zendesk", "azure_devops", "jira"]
    a = Worker(store, trackers, lease_seconds=15, clock=lambda: now[0], ident="A")
    a.balance()
    b = Worker(store, trackers, lease_seconds=15, clock=lambda: now[0], ident="B")
    b.beat()  # B lives: A's fair share is now 2 of 3, yet A holds 3
    with store.transaction() as tx:  # and a third worker died with a claim
        assert leases.acquire(tx, "worker:C", "C", 15, now[0] - timedelta(seconds=20))
    action = _queue(store, "E1", "jira", "update", now=now[0] - timedelta(seconds=20))
    assert _claim(store, "C", now=now[0] - timedelta(seconds=20)) == [action]
    a.heartbeat()
    assert a.pulls() == set(trackers)  # kept until its next cycle's balance
    with store.transaction() as tx:
        assert _claimer(tx, action) is None
    a.balance()
    assert len(a.pulls()) == 2
