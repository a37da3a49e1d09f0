"""The SLA report's figures against a hand-computed fixture (issue 13, item 2).

Period 2026-03-02 to 2026-03-08 (inclusive), now 2026-03-10 12:00 UTC. Five escalations:
E1 Sev2 enterprise Marketplace L2 zendesk: ack met on time, first solution met late, close met;
   new 09:00-09:30 (0.5 h), actively working to 03-03 12:00 (26.5 h), solution proposed to
   03-04 09:00 (21 h), then closed.
E2 Sev3 professional Marketplace L2 azure_devops: ack met late, first solution breached (open),
   close due 03-12 (running); new 5 h, actively working from 03-03 15:00 to the period's end
   03-09 00:00 (129 h). Management escalation: refused (too early, level 1), accepted (level 1),
   refused (too early, level 2).
E3 Sev2 developer Security L1 zendesk: rejected at once ("not entitled: developer plan").
E4 opened 03-01, before the period: not counted; its escalation decision on 02-28 neither.
E5 Sev1 enterprise Security L3 jira, opened 03-08 23:00: ack due 03-09 00:00, not met: breached;
   new 1 h to the period's end.
E6 Sev4 enterprise Marketplace L2 zendesk, opened 03-06 08:00: ack met on time, first solution due
   03-06 20:00 never met and closed 03-07 08:00 (after it was due): breached, though never marked;
   new 1 h, actively working 23 h.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from core.audit import AuditEntry, AuditLog
from core.model import Escalation, Link, LinkRole
from core.sla_report import assemble, buckets, build_report, parse_period
from core.report_render import to_csv
from core.store import Store
from sync import app
from tests.test_cli import write_config

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def at(day: int, hour: float = 0) -> datetime:
    return datetime(2026, 3, day, tzinfo=timezone.utc) + timedelta(hours=hour)


def metric(due, met=None, on_time=None, reason=None, breached=None) -> dict:
    return {"due_at": due, "met_at": met, "on_time": on_time, "delayed_reason": reason,
            "breached_at": breached}


ESCALATIONS = {
    "E1": dict(created=at(2, 9), severity=2, support_plan="enterprise", queue="Marketplace",
               tier="L2", origin="zendesk", sla={
                   "acknowledgement": metric(at(2, 10), at(2, 9.5), True),
                   "first_solution": metric(at(3, 9), at(3, 12), False, "waiting for engineering"),
                   "close": metric(at(9, 9), at(4, 9), True)},
               states=[(at(2, 9), "new", 0), (at(2, 9.5), "actively_working", 0),
                       (at(3, 12), "solution_proposed", 0), (at(4, 9), "closed", 0)]),
    "E2": dict(created=at(3, 10), severity=3, support_plan="professional", queue="Marketplace",
               tier="L2", origin="azure_devops", sla={
                   "acknowledgement": metric(at(3, 14), at(3, 15), False),
                   "first_solution": metric(at(5, 10), None, False, "auto: breached",
                                            breached=at(5, 10)),
                   "close": metric(at(12, 10))},
               states=[(at(3, 10), "new", 0), (at(3, 15), "actively_working", 0),
                       (at(4, 10), "actively_working", 0), (at(5, 11), "actively_working", 1),
                       (at(6, 9), "actively_working", 1)]),
    "E3": dict(created=at(5, 8), severity=2, support_plan="developer", queue="Security", tier="L1",
               origin="zendesk", sla={}, rejection="not entitled: developer plan",
               states=[(at(5, 8), "new", 0), (at(5, 8), "rejected", 0)]),
    "E4": dict(created=at(1, 8), severity=4, support_plan="enterprise", queue="Marketplace",
               tier="L2", origin="zendesk", sla={"acknowledgement": metric(at(1, 9), at(1, 8.5), True)},
               states=[(at(1, 8), "new", 0)]),
    "E5": dict(created=at(8, 23), severity=1, support_plan="enterprise", queue="Security",
               tier="L3", origin="jira", sla={"acknowledgement": metric(at(9, 0))},
               states=[(at(8, 23), "new", 0)]),
    "E6": dict(created=at(6, 8), severity=4, support_plan="enterprise", queue="Marketplace",
               tier="L2", origin="zendesk", sla={
                   "acknowledgement": metric(at(6, 10), at(6, 9), True),
                   "first_solution": metric(at(6, 20))},
               states=[(at(6, 8), "new", 0), (at(6, 9), "actively_working", 0),
                       (at(7, 8), "closed", 0)]),
}
DECISIONS = [("E2", at(4, 10), "escalation.refused.too_early", 3),
             ("E2", at(5, 11), "sla.first_solution.breach,escalation.level_1", 4),
             ("E2", at(6, 9), "escalation.refused.too_early", 5),
             ("E4", at(1, 8) - timedelta(days=1), "escalation.level_1", 1)]


def _versions(name: str, spec: dict):
    base = Escalation(id=name, created_at=spec["created"], updated_at=spec["created"],
                      severity=spec["severity"], support_plan=spec["support_plan"],
                      queue=spec["queue"], tier=spec["tier"], sla=spec["sla"],
                      links=[Link(tracker=spec["origin"], remote_id=name, role=LinkRole.ORIGIN)])
    for version, (when, state, level) in enumerate(spec["states"], start=1):
        reason = spec.get("rejection") if state == "rejected" else None
        data = dict(base.model_dump(), version=version, updated_at=when, state=state,
                    escalation_level=level, rejection_reason=reason)
        yield Escalation.model_validate(data)


def fixture_store(path, url: str | None = None) -> Store:
    """A store (SQLite at ``path``, or ``url``) holding the escalations, versions and decisions."""
    s = Store(url or f"sqlite:///{path}")
    s.migrate()
    with s.transaction() as tx:
        for name, spec in ESCALATIONS.items():
            previous = None
            for escalation in _versions(name, spec):
                s.save_escalation(tx, escalation, {}, by="t", run_id="r", previous_version=previous)
                previous = escalation.version
        for name, when, rule, version in DECISIONS:
            AuditLog(key=None).append(tx, AuditEntry(run_id="r", at=when, action="policy",
                                                     escalation_id=name, rule=rule,
                                                     result=f"version {version}"))
    return s


@pytest.fixture
def store(tmp_path):
    s = fixture_store(tmp_path / "store.db")
    yield s
    s.close()


def report(store):
    with store.transaction() as tx:
        return build_report(tx, parse_period("2026-03-02", "2026-03-08"), NOW)


def share(figures):
    return {k: figures[k] for k in ("met", "late", "breached", "running", "on_time_share")}


def test_on_time_shares_per_metric_and_dimension(store):
    data = report(store)
    assert data["escalations"] == 5
    c = data["compliance"]
    assert share(c["acknowledgement"]["overall"]) == dict(met=2, late=1, breached=1, running=0,
                                                          on_time_share=0.5)
    assert share(c["first_solution"]["overall"]) == dict(met=0, late=1, breached=2, running=0,
                                                         on_time_share=0.0)
    assert share(c["close"]["overall"]) == dict(met=1, late=0, breached=0, running=1,
                                                on_time_share=1.0)
    by = c["acknowledgement"]["by"]
    assert {k: v["on_time_share"] for k, v in by["severity"].items()} == {
        "Sev 1": 0.0, "Sev 2": 1.0, "Sev 3": 0.0, "Sev 4": 1.0}
    assert {k: v["on_time_share"] for k, v in by["queue"].items()} == {
        "Marketplace": pytest.approx(2 / 3), "Security": 0.0}
    assert {k: v["on_time_share"] for k, v in by["tracker"].items()} == {
        "azure_devops": 0.0, "jira": 0.0, "zendesk": 1.0}
    assert {k: v["decided"] for k, v in by["support_plan"].items()} == {"enterprise": 3,
                                                                        "professional": 1}
    assert {k: v["decided"] for k, v in by["tier"].items()} == {"L2": 3, "L3": 1}


def test_every_breach_with_its_delayed_reason(store):
    rows = [(b["escalation_id"], b["metric"], b["outcome"], b["delayed_reason"])
            for b in report(store)["breaches"]]
    assert rows == [("E1", "first_solution", "late", "waiting for engineering"),
                    ("E2", "acknowledgement", "late", None),
                    ("E2", "first_solution", "breached", "auto: breached"),
                    ("E6", "first_solution", "breached", None),
                    ("E5", "acknowledgement", "breached", None)]


def test_time_in_states_escalations_rejections_and_volume(store):
    data = report(store)
    assert data["state_hours"] == {
        "actively_working": {"hours": 178.5, "escalations": 3, "mean_hours": 59.5},
        "new": {"hours": 7.5, "escalations": 4, "mean_hours": 1.875},
        "solution_proposed": {"hours": 21.0, "escalations": 1, "mean_hours": 21.0}}
    escalations = data["management_escalations"]
    assert escalations["by_level"] == {"1": {"accepted": 1, "refused": 1},
                                       "2": {"accepted": 0, "refused": 1}}
    assert escalations["refused_by_rule"] == {"too_early": 2}
    assert data["rejections"] == {"not entitled: developer plan": 1}
    assert data["volume"] == [
        {"bucket": "2026-03-02", "opened": 1, "closed": 0, "rejected": 0},
        {"bucket": "2026-03-03", "opened": 1, "closed": 0, "rejected": 0},
        {"bucket": "2026-03-04", "opened": 0, "closed": 1, "rejected": 0},
        {"bucket": "2026-03-05", "opened": 1, "closed": 0, "rejected": 1},
        {"bucket": "2026-03-06", "opened": 1, "closed": 0, "rejected": 0},
        {"bucket": "2026-03-07", "opened": 0, "closed": 1, "rejected": 0},
        {"bucket": "2026-03-08", "opened": 1, "closed": 0, "rejected": 0}]


def test_csv_holds_the_same_figures(store):
    rows = list(csv.DictReader(io.StringIO(to_csv(report(store)))))
    ack = next(r for r in rows if r["section"] == "compliance" and r["metric"] == "acknowledgement"
               and r["dimension"] == "overall")
    assert (ack["met"], ack["late"], ack["breached"]) == ("2", "1", "1")
    assert sum(r["section"] == "breach" for r in rows) == 5


def test_the_cli_writes_json_and_refuses_a_bad_period(tmp_path, store):
    config = str(write_config(tmp_path))
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["report", "--from", "2026-03-02", "--to", "2026-03-08",
                                      "--format", "json", "--out", str(out), "--config", config])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    # the command reports at the real time, when E2's close (due 03-12) is past due too
    assert data["escalations"] == 5 and len(data["breaches"]) == 6
    bad = CliRunner().invoke(app, ["report", "--from", "2026-03-09", "--to", "2026-03-02",
                                   "--out", str(out), "--config", config])
    assert bad.exit_code == 2 and "is not after --from" in bad.output
    bad = CliRunner().invoke(app, ["report", "--from", "March", "--to", "2026-03-02",
                                   "--out", str(out), "--config", config])
    assert bad.exit_code == 2 and "--from 'March'" in bad.output


def test_long_periods_count_by_week_and_by_month():
    weeks = buckets(parse_period("2026-01-01", "2026-03-31"))
    assert weeks[0] == "week of 2025-12-29" and weeks[-1] == "week of 2026-03-30" and len(weeks) == 14
    months = buckets(parse_period("2025-01-01", "2026-03-31"))
    assert months[0] == "2025-01" and months[-1] == "2026-03" and len(months) == 15


def test_an_empty_period_renders():
    period = parse_period("2026-01-01", "2026-01-31")
    data = assemble([], {}, [], period, NOW)
    assert data["compliance"]["close"]["overall"]["on_time_share"] is None
    from core.report_render import html
    assert "no breach in this period" in html(data)
