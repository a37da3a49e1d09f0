"""The same store and engine on a real PostgreSQL server (started by .ci/run)."""
from __future__ import annotations


import pytest
from sqlalchemy import create_engine

from core import schema
from core.lock import StoreLock, StoreLocked
from core.model import Escalation
from core.store import Store
from tests.engine_helpers import make_engine, partner_ticket

from tests.pg import URL, needs_postgres
pytestmark = [pytest.mark.postgres, needs_postgres]


@pytest.fixture
def pg_url():
    engine = create_engine(URL)
    schema.metadata.drop_all(engine)
    engine.dispose()
    return URL


def test_migrations_and_aware_datetimes_on_postgres(pg_url):
    store = Store(pg_url)
    assert store.migrate() and store.schema_version() == schema.LATEST
    esc = Escalation()
    with store.transaction() as tx:
        store.save_escalation(tx, esc, {}, by="t", run_id="r", previous_version=None)
        again = store.get_escalation(tx, esc.id).escalation
    assert again == esc and again.created_at.tzinfo is not None
    store.close()


def test_engine_cycle_on_postgres(pg_url):
    engine, t = make_engine(pg_url)
    t["zendesk"].put(partner_ticket())
    assert engine.run_cycle().opened == 1
    item_id = next(iter(t["azure_devops"].records))
    t["azure_devops"].edit(item_id, **{"System.State": "Actively Working"})
    engine.run_cycle()
    [ticket] = t["zendesk"].records.values()
    assert ticket.data["status"] == "hold"
    for conn in t.values():
        conn.calls.clear()
    engine.run_cycle()
    assert t["zendesk"].writes() == [] and t["azure_devops"].writes() == []
    engine.store.close()


def test_second_process_on_same_postgres_store_is_refused(pg_url):
    lock = StoreLock.for_url(pg_url)
    with lock.held():
        with pytest.raises(StoreLocked, match="in use"):
            with StoreLock.for_url(pg_url).held():
                pass


def test_history_changes_and_prune_on_postgres(pg_url):
    from datetime import timedelta
    from core.audit import AuditLog
    from core.audit_chain import verify_chain
    from core.prune import prune
    from tests.engine_helpers import Clock
    clock = Clock()
    engine, t = make_engine(pg_url, clock=clock)
    ticket = t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    for severity in ("sev_3", "sev_4"):
        clock.advance(minutes=5)
        record = t["zendesk"].records[ticket.id]
        t["zendesk"].put({**record.data, "custom_fields.360010000002": severity}, remote_id=ticket.id)
        engine.run_cycle()
    store = engine.store
    with store.transaction() as tx:
        [eid] = [e for e, _ in store.open_versions(tx)]
        severities = [h["data"]["severity"] for h in store.history_of(tx, eid)]
        assert severities[-1] == 4 and 3 in severities
        result = prune(tx, clock.advance(days=1), clock())
        assert result.outbox > 0 and result.history > 0
        [newest] = store.history_of(tx, eid)
        assert newest["data"]["severity"] == 4 and verify_chain(tx, AuditLog().key).problems == []
    store.close()
