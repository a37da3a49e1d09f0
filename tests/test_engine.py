"""Engine cycles with in-memory connectors (the real connectors have their own tests)."""
from __future__ import annotations

import pytest

from core.connector import RemoteComment
from connectors.memory import MemoryConnector
from core.audit import AuditLog
from core.model import State
from core.reconcile import older_version
from tests.engine_helpers import Clock, make_engine, partner_ticket


def test_escalated_ticket_opens_escalation_and_creates_mirror(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    ticket = t["zendesk"].put(partner_ticket())
    report = engine.run_cycle()
    assert report.opened == 1 and report.exit_code == 0
    [item] = list(t["azure_devops"].records.values())
    assert item.data["System.Title"] == "12345678901234 - SAS web address doesn't work"
    assert item.data["Custom.SRNumber"] == "12345678901234"
    assert item.data["System.State"] == "New"
    assert item.data["Microsoft.VSTS.Common.Severity"] == "2 - High"
    assert item.data["Custom.SupportPlan"] == "Enterprise"
    assert item.idempotency_key.startswith("tiersync:esc-")
    with engine.store.transaction() as tx:
        links = engine.store.links_for(tx, "zendesk", [ticket.id])
        esc = engine.store.get_escalation(tx, links[ticket.id].escalation_id).escalation
    assert {(l.tracker, l.role.value) for l in esc.links} == {("zendesk", "origin"), ("azure_devops", "mirror")}
    assert esc.queue == "Marketplace Experience" and esc.tier.value == "L2"
    # routing's queue and tier are written back to the origin ticket
    assert t["zendesk"].records[ticket.id].data["custom_fields.360010000010"] == "tier_l2"


def test_state_change_propagates_back_with_a_note(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    ticket = t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    item_id = next(iter(t["azure_devops"].records))
    t["azure_devops"].edit(item_id, **{"System.State": "Actively Working"})
    engine.run_cycle()
    zd = t["zendesk"].records[ticket.id]
    assert zd.data["status"] == "hold"
    assert any("actively_working" in c.body and not c.public for c in zd.comments)


def test_second_cycle_without_remote_change_writes_nothing(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    engine.run_cycle()
    for conn in t.values():
        conn.calls.clear()
    report = engine.run_cycle()
    assert t["zendesk"].writes() == [] and t["azure_devops"].writes() == []
    assert report.changed == 0


def test_restarted_process_resumes_from_stored_cursor(tmp_path):
    trackers = {"zendesk": MemoryConnector("zendesk"), "azure_devops": MemoryConnector("azure_devops")}
    clock = Clock()
    engine, _ = make_engine(tmp_path / "s.db", trackers, clock)
    trackers["zendesk"].put(partner_ticket())
    engine.run_cycle()
    engine.store.close()
    # a new process: same store file, same trackers
    restarted, _ = make_engine(tmp_path / "s.db", trackers, clock)
    with restarted.store.transaction() as tx:
        cursor = restarted.store.get_cursor(tx, "zendesk")
    assert cursor is not None
    trackers["zendesk"].calls.clear()
    restarted.run_cycle()
    fetched_from = [c for c in trackers["zendesk"].calls if c[0] == "fetch"]
    assert all(int(pos) > int(cursor) for _, pos in fetched_from)
    assert len(trackers["azure_devops"].records) == 1  # no duplicate mirror


def test_bad_record_is_quarantined_and_rest_of_page_syncs(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    bad = t["zendesk"].put(partner_ticket(**{"custom_fields.360010000002": "sev_9",
                                              "subject": "99999999999999 - bad severity"}))
    good = t["zendesk"].put(partner_ticket(subject="22222222222222 - Portal timeout"))
    report = engine.run_cycle()
    assert report.quarantined == 1 and report.opened == 1 and report.exit_code == 1
    with engine.store.transaction() as tx:
        [row] = engine.store.quarantined(tx)
        assert engine.store.links_for(tx, "zendesk", [good.id])
    assert row["remote_id"] == bad.id
    assert "sev_9" in row["reason"] and "zendesk.yaml" in row["reason"]
    titles = [r.data["System.Title"] for r in t["azure_devops"].records.values()]
    assert titles == ["22222222222222 - Portal timeout"]


def test_comments_are_copied_once_as_internal_notes(tmp_path):
    clock = Clock()
    engine, t = make_engine(tmp_path / "s.db", clock=clock)
    ticket = t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    note = RemoteComment(id="900", body="Customer sent logs: root password is hunter2",
                         public=True, created_at=clock.advance(minutes=5), author="agent1")
    t["zendesk"].put(dict(t["zendesk"].records[ticket.id].data), remote_id=ticket.id,
                     comments=list(t["zendesk"].records[ticket.id].comments) + [note])
    engine.run_cycle()
    engine.run_cycle()
    [item] = t["azure_devops"].records.values()
    copies = [c for c in item.comments if "Customer sent logs" in c.body]
    assert len(copies) == 1 and copies[0].public is False
    # the audit log never holds the password from the ticket text
    with engine.store.transaction() as tx:
        dump = str(list(AuditLog().query(tx)))
    assert "hunter2" not in dump


def test_owned_field_change_from_non_owner_is_overwritten(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    ticket = t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    item_id = next(iter(t["azure_devops"].records))
    # severity is owned by Zendesk: tier 2 changing it in Azure DevOps is reverted
    t["azure_devops"].edit(item_id, **{"Microsoft.VSTS.Common.Severity": "1 - Critical"})
    engine.run_cycle()
    assert t["azure_devops"].records[item_id].data["Microsoft.VSTS.Common.Severity"] == "2 - High"
    with engine.store.transaction() as tx:
        actions = [r["action"] for r in AuditLog().query(tx)]
    assert "field-ignored" in actions
    assert t["zendesk"].records[ticket.id].data["custom_fields.360010000002"] == "sev_2"


def test_conflict_rereads_and_retries(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    ticket = t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    item_id = next(iter(t["azure_devops"].records))
    t["azure_devops"].edit(item_id, **{"System.State": "Actively Working"})
    # the pull sees the change and queues a Zendesk update; a human edits the ticket before it is sent
    from core.engine import CycleReport
    report = CycleReport(run_id="r1")
    engine.planner.run_id = "r1"
    engine.pull("azure_devops", report, lambda: False)
    t["zendesk"].edit(ticket.id, priority="urgent")
    from core.outbox import OutboxApplier
    OutboxApplier(engine).apply(report, lambda: False)
    assert report.conflicts == 1
    engine.run_cycle()
    data = t["zendesk"].records[ticket.id].data
    assert data["status"] == "hold" and data["priority"] == "urgent"
    with engine.store.transaction() as tx:
        link = engine.store.links_for(tx, "zendesk", [ticket.id])[ticket.id]
        esc = engine.store.get_escalation(tx, link.escalation_id).escalation
    assert esc.state is State.ACTIVELY_WORKING and esc.customer_priority.value == "urgent"


def test_crash_after_remote_create_adopts_instead_of_duplicating(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    t["zendesk"].put(partner_ticket())

    class Crash(Exception):
        pass

    real_create = t["azure_devops"].create

    def create_then_crash(*args, **kwargs):
        real_create(*args, **kwargs)
        raise Crash("process killed after the remote create")

    t["azure_devops"].create = create_then_crash
    try:
        engine.run_cycle()
    except Crash:
        pass
    t["azure_devops"].create = real_create
    engine.run_cycle()
    engine.run_cycle()
    assert len(t["azure_devops"].records) == 1
    with engine.store.transaction() as tx:
        assert engine.store.count_actions(tx).get("pending", 0) == 0


def test_dry_run_writes_nothing_and_reports_plan(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    t["zendesk"].put(partner_ticket())
    engine.store.dry_run = True
    report = engine.run_cycle(dry_run=True)
    engine.store.close()
    assert t["azure_devops"].records == {}
    assert any(a["kind"] == "create" and a["connector"] == "azure_devops" for a in report.planned)
    again, _ = make_engine(tmp_path / "s.db", t)
    with again.store.transaction() as tx:
        assert again.store.get_cursor(tx, "zendesk") is None


def test_a_read_older_than_the_snapshot_moves_nothing_back(tmp_path):
    """Several daemons read one record: a pull reads it, another daemon reads it after a
    change and records that newer snapshot first; the older read, processed last, is not a
    change (in the three-daemon chaos run a Jira status read mid-walk, processed after the
    create's own read, moved the escalation waiting_on_internal -> new -> back)."""
    from core.engine import CycleReport
    engine, t = make_engine(tmp_path / "s.db")
    ticket = t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    item_id = next(iter(t["azure_devops"].records))
    older = t["azure_devops"].records[item_id]  # read by a slow pull, state New
    t["azure_devops"].edit(item_id, **{"System.State": "Actively Working"})
    engine.run_cycle()  # the newer read is recorded first
    notes = len(t["zendesk"].records[ticket.id].comments)
    report = CycleReport(run_id="late")
    engine.planner.run_id = "late"
    with engine.store.transaction() as tx:
        engine.process_records(tx, "azure_devops", [older], report)
        link = engine.store.links_for(tx, "azure_devops", [item_id])[item_id]
        esc = engine.store.get_escalation(tx, link.escalation_id).escalation
    assert esc.state is State.ACTIVELY_WORKING
    assert report.changed == 0 and report.stale == 1
    assert link.last_version == t["azure_devops"].records[item_id].version  # not moved back
    engine.run_cycle()
    engine.run_cycle()
    assert len(t["zendesk"].records[ticket.id].comments) == notes  # no state note announced
    assert t["zendesk"].records[ticket.id].data["status"] == "hold"


@pytest.mark.parametrize("order, version, than, older", [
    ("counter", "9", "10", True), ("counter", "10", "9", False), ("counter", "7", "7", False),
    ("time", "2026-01-05T20:00:10.000+1100", "2026-01-05T09:00:10.001Z", True),  # Jira, Zendesk
    ("time", "2026-01-05T09:00:11Z", "2026-01-05T20:00:10.000+1100", False),
    ("time", "2026-01-05T09:00:10Z", "2026-01-05T09:00:10.000+0000", False),  # the same instant
    ("", "1", "2", False), ("counter", "rev-a", "2", False), ("time", None, "2", False)])
def test_version_order(order, version, than, older):
    assert older_version(order, version, than) is older
