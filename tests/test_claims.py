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
