"""The audit chain, trace sources and SLA report on a real PostgreSQL server (.ci/run starts one)."""
from __future__ import annotations


import pytest
from sqlalchemy import create_engine, delete

from core import schema
from core.audit import AuditLog
from core.audit_chain import verify_chain
from core.sla_report import build_report, parse_period
from tests.test_audit_chain import KEY, fill
from tests.test_sla_report import NOW, fixture_store

from tests.pg import URL, needs_postgres
pytestmark = [pytest.mark.postgres, needs_postgres]


@pytest.fixture
def pg_store():
    engine = create_engine(URL)
    schema.metadata.drop_all(engine)
    engine.dispose()
    store = fixture_store(None, URL)
    yield store
    store.close()


def test_report_figures_on_postgres(pg_store):
    with pg_store.transaction() as tx:
        data = build_report(tx, parse_period("2026-03-02", "2026-03-08"), NOW)
    assert data["compliance"]["acknowledgement"]["overall"]["met"] == 2
    assert data["state_hours"]["actively_working"]["hours"] == 178.5
    assert data["management_escalations"]["by_level"] == {"1": {"accepted": 1, "refused": 1},
                                                          "2": {"accepted": 0, "refused": 1}}


def test_keyed_chain_and_a_cut_on_postgres(pg_store):
    fill(pg_store, AuditLog(key=KEY), 5)
    with pg_store.transaction() as tx:
        assert verify_chain(tx, KEY).problems == []
        last = verify_chain(tx, KEY).head.last_seq
        tx.execute(delete(schema.audit).where(schema.audit.c.seq == last))
    with pg_store.transaction() as tx:
        assert any("head records" in p for p in verify_chain(tx, KEY).problems)
