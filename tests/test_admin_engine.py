"""Issue 10 rules at the engine level, on in-memory trackers: late retries re-planned from
today's state, drift repaired without loops, marked mirrors never opened as escalations,
quarantine entries that clear themselves, exit codes while problems remain, and rebuild."""
from __future__ import annotations

import pytest

from core.engine import CycleReport
from core.errors import PermanentError, Retryable
from core.planner import escalation_id_for, idempotency_key
from core.rebuild import rebuild
from tests.engine_helpers import Clock, make_engine, partner_ticket
from tests.test_engine_faults import FaultyConnector, trackers

SEVERITY = "Microsoft.VSTS.Common.Severity"
ZD_SEVERITY = "custom_fields.360010000002"


class FailingUpdates(FaultyConnector):
    """Its next updates raise before anything is written."""

    def __init__(self, name: str):
        super().__init__(name)
        self.update_fails: list[BaseException] = []

    def update(self, remote_id, fields, *, expected_version):
        if self.update_fails:
            raise self.update_fails.pop(0)
        return super().update(remote_id, fields, expected_version=expected_version)


def mirrored(tmp_path, ado=None):
    t = {"zendesk": FaultyConnector("zendesk"), "azure_devops": ado or FailingUpdates("azure_devops")}
    clock = Clock()
    engine, _ = make_engine(tmp_path / "s.db", t, clock)
    engine.settings.backoff_seconds = 0.0
    # one lane after another: these tests count writes, which lanes racing each other can add
    # to (a retry sent before the other tracker's newer change is pulled: two correct writes)
    engine.settings.concurrent_pulls = False
    ticket = t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    engine.run_cycle()
    [item] = list(t["azure_devops"].records.values())
    return engine, t, ticket, item, clock


def test_a_retry_after_the_state_moved_on_sends_todays_value(tmp_path):
    engine, t, ticket, item, clock = mirrored(tmp_path)
    engine.settings.backoff_seconds = 30.0  # the retry is not due again within this cycle
    ado = t["azure_devops"]
    ado.update_fails.append(Retryable("timeout", tracker="azure_devops"))
    t["zendesk"].edit(ticket.id, **{"custom_fields.360010000002": "sev_3"})
    report = engine.run_cycle()
    assert report.actions_retrying == 1
    t["zendesk"].edit(ticket.id, **{"custom_fields.360010000002": "sev_4"})
    clock.advance(seconds=120)
    engine.run_cycle()
    engine.run_cycle()
    assert ado.records[item.id].data[SEVERITY] == "4 - Low"
    assert [v for op, v in ado.calls if op == "update"].count(item.id) == 1, "one write, today's value"


def test_a_replayed_dead_letter_never_writes_a_stale_value(tmp_path):
    engine, t, ticket, item, _ = mirrored(tmp_path)
    ado = t["azure_devops"]
    ado.update_fails.append(PermanentError("refused", tracker="azure_devops"))
    t["zendesk"].edit(ticket.id, **{ZD_SEVERITY: "sev_3"})
    assert engine.run_cycle().actions_dead == 1
    t["zendesk"].edit(ticket.id, **{ZD_SEVERITY: "sev_2"})
    engine.run_cycle()
    with engine.store.transaction() as tx:
        engine.store.replay(tx, None, engine.clock())
    engine.run_cycle()
    assert ado.records[item.id].data[SEVERITY] == "2 - High"


def test_drift_on_a_record_read_again_is_repaired(tmp_path):
    engine, t, ticket, item, _ = mirrored(tmp_path)
    ado = t["azure_devops"]
    ado.update_fails.append(PermanentError("refused", tracker="azure_devops"))
    t["zendesk"].edit(ticket.id, **{ZD_SEVERITY: "sev_3"})
    engine.run_cycle()  # the update is dead-lettered: the item still says 2, nothing pending
    with engine.store.transaction() as tx:
        engine.store.finish_action(tx, engine.store.actions(tx, state="dead")[0].id, "superseded",
                                   engine.clock())
    # the item is read again (a reconciliation): it is drift, not an echo of tiersync's write
    report = engine.run_cycle()  # (outside the transaction: its lanes run in threads)
    with engine.store.transaction() as tx:
        engine.process_records(tx, "azure_devops", [ado.get(item.id)], report)
    engine.run_cycle()
    assert ado.records[item.id].data[SEVERITY] == "3 - Medium"


class Normalising(FailingUpdates):
    """A tracker that stores a title its own way (as some trackers trim or rewrite values)."""

    def update(self, remote_id, fields, *, expected_version):
        fields = {k: (v.upper() if k == "System.Title" else v) for k, v in fields.items()}
        return super().update(remote_id, fields, expected_version=expected_version)


def test_a_value_the_tracker_normalises_is_not_drift_and_never_loops(tmp_path):
    engine, t, ticket, item, _ = mirrored(tmp_path, ado=Normalising("azure_devops"))
    ado = t["azure_devops"]
    t["zendesk"].edit(ticket.id, subject="12345678901234 - SAS web address still broken")
    for _ in range(3):
        engine.run_cycle()
    writes = [c for c in ado.calls if c == ("update", item.id)]
    engine.run_cycle()
    engine.run_cycle()
    assert [c for c in ado.calls if c == ("update", item.id)] == writes, "tiersync rewrote in a loop"


def test_a_mirror_marker_of_an_unknown_escalation_never_opens_one(tmp_path):
    t = trackers()
    engine, _ = make_engine(tmp_path / "s.db", t, Clock())
    t["azure_devops"].put({"System.WorkItemType": "Engagement Item", "System.Title": "1 - x",
                           "System.State": "New"}, marker=idempotency_key("esc-0000000000000000", "azure_devops"))
    report = engine.run_cycle()
    assert report.opened == 0 and report.ignored == 1


def test_escalation_ids_derive_from_the_origin_record(tmp_path):
    engine, t, ticket, item, _ = mirrored(tmp_path)
    assert t["azure_devops"].records[item.id].idempotency_key == \
        idempotency_key(escalation_id_for("zendesk", ticket.id), "azure_devops")


def test_quarantine_clears_itself_and_exit_code_stays_1_until_then(tmp_path):
    t = trackers()
    engine, _ = make_engine(tmp_path / "s.db", t, Clock())
    ticket = t["zendesk"].put(partner_ticket(**{ZD_SEVERITY: "sev_9"}))
    assert engine.run_cycle().exit_code == 1
    report = engine.run_cycle()
    assert (report.quarantined, report.quarantine_open, report.exit_code) == (0, 1, 1)
    t["zendesk"].edit(ticket.id, **{ZD_SEVERITY: "sev_2"})
    report = engine.run_cycle()
    assert report.opened == 1 and report.quarantine_open == 0 and report.exit_code == 0
    with engine.store.transaction() as tx:
        assert engine.store.quarantined(tx) == []


def test_rebuild_restores_links_from_markers_and_reports_orphans(tmp_path):
    engine, t, ticket, item, _ = mirrored(tmp_path)
    with engine.store.transaction() as tx:
        [before] = [s.escalation for s in engine.store.get_escalations(
            tx, [escalation_id_for("zendesk", ticket.id)]).values()]
    orphan = t["azure_devops"].put({"System.WorkItemType": "Engagement Item", "System.Title": "2 - y"},
                                   marker=idempotency_key("esc-00000000deadbeef", "azure_devops"))
    fresh, _ = make_engine(tmp_path / "fresh.db", t, Clock())
    writes = len(t["zendesk"].writes()) + len(t["azure_devops"].writes())
    result = rebuild(fresh, CycleReport(run_id="rebuild-test"))
    assert result.escalations == 1 and result.links == 2
    assert result.orphans == [f"azure_devops:{orphan.id} (escalation esc-00000000deadbeef)"]
    assert len(t["zendesk"].writes()) + len(t["azure_devops"].writes()) == writes, "rebuild wrote"
    with fresh.store.transaction() as tx:
        after = fresh.store.get_escalation(tx, before.id).escalation
    assert after.link_for("azure_devops").remote_id == item.id
    assert after.severity == before.severity and after.title == before.title


def test_the_light_drift_check_repairs_from_snapshots_without_reading_records(tmp_path):
    engine, t, ticket, item, _ = mirrored(tmp_path)
    ado = t["azure_devops"]
    ado.update_fails.append(PermanentError("refused", tracker="azure_devops"))
    t["zendesk"].edit(ticket.id, **{ZD_SEVERITY: "sev_3"})
    engine.run_cycle()
    with engine.store.transaction() as tx:  # the dead letter is set aside: nothing pending
        engine.store.finish_action(tx, engine.store.actions(tx, state="dead")[0].id, "superseded",
                                   engine.clock())
    engine.run_cycle()
    assert ado.records[item.id].data[SEVERITY] == "2 - High", "a plain cycle does not see it"
    ado.calls.clear()
    report = engine.run_cycle(drift_check=True)
    assert report.drift_repaired == 1
    assert ado.records[item.id].data[SEVERITY] == "3 - Medium"
    assert [c for c in ado.calls if c[0] != "get"] == [("update", item.id)]  # one write, no fetch


def test_link_takes_an_orphan_mirror_and_refuses_another_escalations_mirror(tmp_path):
    from core.linking import LinkRefused, link_records
    engine, t, ticket, item, _ = mirrored(tmp_path)
    other = t["zendesk"].put(partner_ticket(subject="22222222222222 - second case", tags=[]))
    orphan = t["azure_devops"].put({"System.WorkItemType": "Engagement Item", "System.Title": "2 - y"},
                                   marker=idempotency_key("esc-00000000deadbeef", "azure_devops"))
    twin = t["azure_devops"].put({"System.WorkItemType": "Engagement Item", "System.Title": "3 - z"},
                                 marker=t["azure_devops"].records[item.id].idempotency_key)
    report = CycleReport(run_id="link-test")
    with pytest.raises(LinkRefused, match=f"already has zendesk:{ticket.id}"):
        link_records(engine, ("zendesk", other.id), ("azure_devops", item.id), report)
    with pytest.raises(LinkRefused, match=f"mirror of escalation {escalation_id_for('zendesk', ticket.id)}"):
        link_records(engine, ("zendesk", other.id), ("azure_devops", twin.id), report)
    outcome = link_records(engine, ("zendesk", other.id), ("azure_devops", orphan.id), report)
    assert outcome.opened and outcome.escalation_id == escalation_id_for("zendesk", other.id)
    with pytest.raises(LinkRefused, match="same tracker"):
        link_records(engine, ("zendesk", other.id), ("zendesk", ticket.id), report)


class BreaksAfterPages(FaultyConnector):
    """Its change feed fails after ``pages`` pages (a dropped connection mid-backfill)."""

    def __init__(self, name: str, pages: int):
        super().__init__(name)
        self.config.page_size = 2
        self.pages = pages

    def fetch_changes(self, cursor):
        for number, page in enumerate(super().fetch_changes(cursor)):
            if number == self.pages:
                raise Retryable("connection reset", tracker=self.name)
            yield page


def test_an_interrupted_backfill_resumes_where_it_stopped(tmp_path):
    from datetime import datetime, timezone
    from core.backfill import backfill
    zendesk = BreaksAfterPages("zendesk", pages=1)
    t = {"zendesk": zendesk, "azure_devops": FaultyConnector("azure_devops")}
    engine, _ = make_engine(tmp_path / "s.db", t, Clock())
    for n in range(5):
        zendesk.put(partner_ticket(subject=f"1234567890123{n} - case {n}"))
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    first = CycleReport(run_id="backfill-1")
    with pytest.raises(Retryable):
        backfill(engine, since, ["zendesk"], first)
    assert first.opened == 2
    zendesk.pages = 99
    second = CycleReport(run_id="backfill-2")
    [summary] = backfill(engine, since, ["zendesk"], second).trackers
    assert summary.resumed and summary.records == 3 and second.opened == 3
    again = CycleReport(run_id="backfill-3")
    [summary] = backfill(engine, since, ["zendesk"], again).trackers
    assert summary.records == 0 and again.opened == 0
    assert t["azure_devops"].writes() == [], "a backfill sends nothing"


def test_reconcile_reports_a_deleted_mirror_as_missing(tmp_path):
    from core.drift_check import reconcile
    engine, t, ticket, item, _ = mirrored(tmp_path)
    del t["azure_devops"].records[item.id]
    t["azure_devops"].calls.clear()
    result = reconcile(engine, CycleReport(run_id="reconcile-test"), fix=True)
    assert result.missing == [f"azure_devops:{item.id} (escalation {escalation_id_for('zendesk', ticket.id)})"]
    assert result.unreadable == [] and t["azure_devops"].writes() == []


def test_a_tracker_value_that_means_the_same_is_not_drift(tmp_path):
    engine, t, ticket, item, _ = mirrored(tmp_path)
    t["zendesk"].edit(ticket.id, status="solved")  # tier 1 solves: the escalation closes
    engine.run_cycle()
    engine.run_cycle()
    t["zendesk"].calls.clear()
    t["zendesk"].edit(ticket.id, status="closed")  # Zendesk closes the solved ticket itself
    report = engine.run_cycle()
    assert report.drift_repaired == 0 and t["zendesk"].writes() == []
    assert t["zendesk"].records[ticket.id].data["status"] == "closed"
