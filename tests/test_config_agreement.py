"""Daemons on one store with different policy or mapping files (core/config_agreement.py): the
one started last is in force, the others step back (no pull lease, no claim, no cycle, not
ready) until it is gone or they run the same files. SQLite here; PostgreSQL in
tests/test_workers.py with real daemons."""
from __future__ import annotations

from datetime import timedelta

from core import leases
from core.config_agreement import rules_fingerprint
from core.mapping import load_mapping
from core.shared import claim
from core.store import Store
from core.worker import Worker
from tests.engine_helpers import MAPPINGS

CONNECTORS = ["zendesk", "azure_devops", "jira"]


def _store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'agree.db'}")
    store.migrate()
    return store


class Clock:
    def __init__(self):
        from datetime import datetime, timezone
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now


def _worker(store, clock, ident, config) -> Worker:
    worker = Worker(store, CONNECTORS, lease_seconds=15, clock=clock, ident=ident, config=config)
    worker.beat()
    worker.balance()
    return worker


def test_the_daemon_started_last_is_in_force_and_an_older_one_steps_back(tmp_path):
    store, clock = _store(tmp_path), Clock()
    old = _worker(store, clock, "old", "rules-A")
    assert old.pulls() == set(CONNECTORS) and old.steps_back() is None
    with store.transaction() as tx:
        queued = store.enqueue(tx, escalation_id="E1", connector="jira", kind="update",
                               payload={"fields": {}}, now=clock.now)
        assert [a.id for a in claim(tx, "old", clock.now, 10)] == [queued]
    clock.now += timedelta(seconds=1)
    new = _worker(store, clock, "new", "rules-B")
    old.beat()  # its next heartbeat
    assert old.steps_back().worker == "new" and old.steps_back().fingerprint == "rules-B"
    assert old.pulls() == set() and not any(old.holds(c) for c in CONNECTORS)
    with store.transaction() as tx:
        assert [a.id for a in claim(tx, "new", clock.now, 10)] == [queued]  # its claim was let go
    new.balance()
    assert new.pulls() == set(CONNECTORS) and new.steps_back() is None
    old.balance()
    assert old.pulls() == set()  # stepping back, it takes no lease
    new.stop()  # the newer daemon is gone: the older one's files are in force again
    old.beat()
    old.balance()
    assert old.steps_back() is None and old.pulls() == set(CONNECTORS)


def test_daemons_with_the_same_files_share_the_work(tmp_path):
    store, clock = _store(tmp_path), Clock()
    first = _worker(store, clock, "first", "rules-A")
    clock.now += timedelta(seconds=1)
    second = _worker(store, clock, "second", "rules-A")
    first.balance()  # gives up what is beyond its share of two workers
    second.balance()
    assert first.steps_back() is None and second.steps_back() is None
    assert first.pulls() | second.pulls() == set(CONNECTORS) and second.pulls()


def test_an_expired_announcement_counts_no_more(tmp_path):
    store, clock = _store(tmp_path), Clock()
    old = _worker(store, clock, "old", "rules-A")
    clock.now += timedelta(seconds=1)
    _worker(store, clock, "killed", "rules-B")  # SIGKILLed: its leases are never renewed
    old.beat()
    assert old.steps_back() is not None
    clock.now += timedelta(seconds=16)
    old.beat()
    old.balance()
    assert old.steps_back() is None and old.pulls() == set(CONNECTORS)
    with store.transaction() as tx:
        assert not [n for n in leases.held(tx, "killed", clock.now)]


def test_the_rules_fingerprint_follows_policy_and_mappings_only():
    mappings = {name: load_mapping(MAPPINGS / f"{name}.yaml") for name in ("zendesk", "azure_devops")}
    base = rules_fingerprint("policy-1", mappings)
    assert rules_fingerprint("policy-1", dict(reversed(list(mappings.items())))) == base
    assert rules_fingerprint("policy-2", mappings) != base
    changed = dict(mappings)
    changed["zendesk"] = mappings["zendesk"].model_copy(update={"record_type": "other"})
    assert rules_fingerprint("policy-1", changed) != base
