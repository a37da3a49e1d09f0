"""The report, trace and audit queries read through indexes (issue 13: each under 2 s over
1,000,000 audit entries; bench/audit.py measures them).

Every statement the command sends is captured as it runs and asked for its plan (SQLite's
EXPLAIN QUERY PLAN): none may scan the audit log, the escalations or their history; each must
search one of the indexes named here.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.audit import AuditEntry, AuditLog
from core.schema import MIGRATIONS

# the migration under test (later migrations of other branches may follow it)
AUDIT_INDEX = next(n for n, what, _ in MIGRATIONS if what == "audit index by action in chain order")
from core.sla_report import build_report, parse_period
from core.trace import trace
from tests.explain import select_plans
from tests.test_sla_report import NOW, fixture_store

BIG_TABLES = ("audit", "escalations", "escalation_history")


@pytest.fixture
def store(tmp_path):
    s = fixture_store(tmp_path / "store.db")
    yield s
    s.close()


def plans(store, work) -> list[tuple[str, list[str]]]:
    """(statement, plan lines) of every SELECT ``work(tx)`` sends."""
    return select_plans(store, work)


def assert_indexed(found, *expected_indexes: str) -> None:
    lines = [line for _, plan in found for line in plan]
    scans = [line for line in lines if any(line.startswith(f"SCAN {t}") for t in BIG_TABLES)]
    assert scans == [], found
    for index in expected_indexes:
        assert any(index in line for line in lines), (index, found)


def test_the_report_reads_its_period_through_indexes(store):
    found = plans(store, lambda tx: [build_report(tx, parse_period("2026-03-02", "2026-03-08"), NOW)])
    assert_indexed(found, "ix_escalations_created", "ix_audit_action_at",
                   "sqlite_autoindex_escalation_history_1")
    assert len(found) <= 4  # one query per part, not one per escalation or per batch of ids


def test_trace_reads_the_record_s_entries_only(store):
    found = plans(store, lambda tx: trace(tx, "azure_devops", "42"))
    assert_indexed(found, "ix_audit_record_seq")


@pytest.mark.parametrize("filters, index", [
    ({"escalation_id": "E1"}, "ix_audit_escalation_seq"),
    ({"tracker": "zendesk", "remote_id": "1"}, "ix_audit_record_seq"),
    ({"action": "dead-lettered"}, "ix_audit_action_seq"),  # a rare action: no walk of the log
    ({"run_id": "r"}, "ix_audit_run_id"),
    ({"since": datetime(2026, 3, 2, tzinfo=timezone.utc),
      "until": datetime(2026, 3, 3, tzinfo=timezone.utc)}, "ix_audit_at"),
])
def test_audit_filters_newest_first_use_their_index(store, filters, index):
    found = plans(store, lambda tx: AuditLog(key=None).query(tx, limit=200, newest_first=True,
                                                             **filters))
    assert_indexed(found, index)


def test_a_store_analyzed_before_the_action_index_keeps_tracing_by_record(tmp_path):
    """Statistics for every index but the new one would make SQLite walk all `written` entries."""
    from sqlalchemy import text
    s = fixture_store(tmp_path / "store.db")
    with s.transaction() as tx:
        for n in range(400):  # 40 per record: more than SQLite guesses for an index without statistics
            AuditLog(key=None).append(tx, AuditEntry(run_id="r", at=NOW, action="written",
                                                     tracker="azure_devops", remote_id=str(n % 10),
                                                     after={"title": {"value": "x"}}))
        tx.execute(text("DROP INDEX ix_audit_action_seq"))
        tx.execute(text("ANALYZE"))
        tx.execute(text("UPDATE schema_version SET version = :n"), {"n": AUDIT_INDEX - 1})
    assert s.migrate()[0] == f"{AUDIT_INDEX}: audit index by action in chain order"
    found = plans(s, lambda tx: trace(tx, "azure_devops", "7"))
    s.close()
    assert_indexed(found, "ix_audit_record_seq")
    assert not any("ix_audit_action_seq" in line for _, plan in found for line in plan), found
