"""Issue 10's store queries (health, drift, quarantine lifecycle, rebuild) on PostgreSQL."""
from __future__ import annotations


import pytest
from sqlalchemy import create_engine

from connectors.memory import MemoryConnector
from core import schema
from core.engine import CycleReport
from core.errors import PermanentError
from core.rebuild import rebuild
from tests.engine_helpers import Clock, make_engine, partner_ticket
from tests.test_admin_engine import SEVERITY, ZD_SEVERITY, FailingUpdates

from tests.pg import URL, needs_postgres
pytestmark = [pytest.mark.postgres, needs_postgres]


def _empty() -> None:
    engine = create_engine(URL)
    schema.metadata.drop_all(engine)
    engine.dispose()


def test_replay_quarantine_exit_codes_and_rebuild_on_postgres():
    _empty()
    t = {"zendesk": MemoryConnector("zendesk"), "azure_devops": FailingUpdates("azure_devops")}
    engine, _ = make_engine(URL, t, Clock())
    ticket = t["zendesk"].put(partner_ticket())
    bad = t["zendesk"].put(partner_ticket(**{ZD_SEVERITY: "sev_9"}))
    engine.run_cycle()
    engine.run_cycle()
    [item_id] = t["azure_devops"].records
    t["azure_devops"].update_fails.append(PermanentError("refused", tracker="azure_devops"))
    t["zendesk"].edit(ticket.id, **{ZD_SEVERITY: "sev_3"})
    report = engine.run_cycle()
    assert (report.deadletters_open, report.quarantine_open, report.exit_code) == (1, 1, 1)
    t["zendesk"].edit(ticket.id, **{ZD_SEVERITY: "sev_4"})
    t["zendesk"].edit(bad.id, **{ZD_SEVERITY: "sev_2"})
    engine.run_cycle()
    with engine.store.transaction() as tx:
        engine.store.replay(tx, None, engine.clock())
    report = engine.run_cycle()
    assert t["azure_devops"].records[item_id].data[SEVERITY] == "4 - Low"
    assert report.exit_code == 0, report
    engine.store.close()
    _empty()
    fresh, _ = make_engine(URL, t, Clock())
    result = rebuild(fresh, CycleReport(run_id="rebuild-pg"))
    assert result.escalations == 2 and result.links == 4 and result.orphans == []
    fresh.store.close()
