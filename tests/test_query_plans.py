"""The store's hot lookups are planned on an index, never a scan (issue 11 item 7).

Each test runs the real store methods, captures the SELECTs they send to SQLite and asks SQLite
for each one's query plan (EXPLAIN QUERY PLAN) with the same parameters.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.shared import claim
from core.store import LinkRow, Store

from tests.explain import select_plans

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'plans.db'}")
    s.migrate()
    yield s
    s.close()


def plans_of(store: Store, run) -> list[tuple[str, str]]:
    """(statement, plan) of every SELECT that ``run(tx)`` sends."""
    return [(sql, " | ".join(lines)) for sql, lines in select_plans(store, run)]


def seeded(store: Store) -> None:
    with store.transaction() as tx:
        for n in range(20):
            store.enqueue(tx, escalation_id=f"esc-{n}", connector="jira", kind="create",
                          payload={}, now=NOW, dedupe_key=f"tiersync:esc-{n}:jira")
            store.enqueue(tx, escalation_id=f"esc-{n}", connector="zendesk", kind="update",
                          payload={}, now=NOW, remote_id=str(n))


def test_outbox_lookups_use_their_indexes(store):
    seeded(store)
    plans = plans_of(store, lambda tx: (
        store.pending_create(tx, "esc-3", "jira"),
        store.pending_update(tx, "zendesk", "3"),
        store.pending_updates(tx, "zendesk", "3"),
        store.done_comments(tx, "esc-3", "jira"),
        store.due_actions(tx, NOW, 100, 0),
        store.enqueue(tx, escalation_id="esc-3", connector="jira", kind="comment", payload={},
                      now=NOW, dedupe_key="note:esc-3:jira:x"),
        claim(tx, "worker-1", NOW, 100)))
    assert len(plans) >= 8
    for sql, plan in plans:
        assert "SCAN outbox" not in plan and "SCAN outbox_done_keys" not in plan, (sql, plan)
        assert "USING" in plan, (sql, plan)
    by_escalation = [plan for sql, plan in plans if "outbox.kind = " in sql
                     and "outbox.escalation_id = " in sql]
    assert by_escalation and all("ix_outbox_escalation" in plan for plan in by_escalation)


def test_link_lookups_use_their_indexes(store):
    with store.transaction() as tx:
        store.enqueue(tx, escalation_id="esc-1", connector="jira", kind="create", payload={},
                      now=NOW)
        for n in range(20):
            tx.exec_driver_sql(
                "INSERT INTO escalations (id, version, state, data, field_times, created_at, "
                "updated_at) VALUES (?, 1, 'new', '{}', '{}', ?, ?)",
                (f"esc-{n}", NOW.isoformat(), NOW.isoformat()))
            store.save_link(tx, LinkRow(tracker="zendesk", remote_id=str(n), escalation_id=f"esc-{n}",
                                        role="origin"), NOW)
    plans = plans_of(store, lambda tx: (store.links_for(tx, "zendesk", ["3", "4"]),
                                        store.links_of(tx, ["esc-3", "esc-4"])))
    assert len(plans) == 2
    for sql, plan in plans:
        assert "SCAN links" not in plan and "USING" in plan, (sql, plan)
