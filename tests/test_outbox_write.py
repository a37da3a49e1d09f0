"""A Zendesk update carries the comment queued after it, version-checked, over the real
connectors and simulators (core/outbox_write.py; issue 11 item 8): one write instead of an
update, a read and a comment, and no comment lost or doubled when the ticket moved on first."""
from __future__ import annotations

from collections import Counter

import pytest

from bench.request_counts import seed, until_quiet, wave
from core.engine import CycleReport
from core.lanes import send_all
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e
NOTE = "Picked up by tier 2; reproducing."


def _synced(box: Sandbox, count: int = 2) -> dict[str, int]:
    tickets = seed(box, count)
    _quiet(box)
    return tickets


def _quiet(box: Sandbox, cycles: int = 8) -> None:
    if until_quiet(box, cycles + 1) > cycles:  # one more than allowed: not quiet in time
        raise AssertionError("the sandbox did not settle")


def _zendesk(box: Sandbox) -> list:
    sim = box.sims["zendesk"]
    with sim.lock:
        return list(sim.requests)


def _bodies(box: Sandbox, ticket_id: int) -> Counter:
    ticket = next(t for t in box.snapshot()["zendesk"]["tickets"] if t["id"] == ticket_id)
    return Counter(c["body"] for c in ticket["comments"])


def test_a_state_change_and_its_note_are_one_write_with_no_read_before(tmp_path):
    with Sandbox(tmp_path) as box:
        tickets = _synced(box)
        box.settle()
        box.clear_requests()
        wave(box, len(tickets))
        _quiet(box)
        puts = [e for e in _zendesk(box) if e.method == "PUT"]
        carried = [p for p in puts if p.body["ticket"].get("status") and p.body["ticket"].get("comment")]
        # each ticket: its new status with the first note in one version-checked PUT
        assert len(carried) == len(tickets), [p.body for p in puts]
        assert all(p.body["ticket"]["safe_update"] and p.body["ticket"]["updated_stamp"] for p in puts)
        # no ticket or comment list read before a comment: the version check stands for it
        reads = [e.path for e in _zendesk(box) if e.method == "GET"]
        assert not [p for p in reads if "/comments" in p or "show_many" in p and "tickets" in p], reads
        for ticket_id in tickets.values():
            bodies = _bodies(box, ticket_id)
            copies = [b for b in bodies if NOTE in b]
            assert len(copies) == 1 and bodies[copies[0]] == 1, bodies
            assert max(bodies.values()) == 1, bodies  # nothing doubled
        jira = box.sims["jira"]
        with jira.lock:  # Jira: the transitions come with the version read
            assert not [e for e in jira.requests if e.method == "GET" and e.path.endswith("/transitions")]


def test_a_ticket_that_moved_on_refuses_the_write_whole_and_nothing_is_lost_or_doubled(tmp_path):
    with Sandbox(tmp_path) as box:
        tickets = _synced(box, 1)
        ticket_id = next(iter(tickets.values()))
        box.settle()
        wave(box, 1)
        box.settle()
        engine = box.engine()
        report = CycleReport(run_id="run-conflict")
        engine.planner.run_id = report.run_id
        engine.pull("azure_devops", report, lambda: False)  # the change is queued for Zendesk
        box.sims["zendesk"].edit_ticket(ticket_id, {"priority": "high"}, comment="Customer called.",
                                        author_email="alice.agent@tier1.example.com")
        box.clear_requests()
        send_all(engine, report, lambda: False)
        refused = [e for e in _zendesk(box) if e.method == "PUT" and e.status == 409]
        assert refused and report.conflicts >= 1
        for connector in engine.connectors.values():
            connector.close()
        _quiet(box)
        ticket = next(t for t in box.snapshot()["zendesk"]["tickets"] if t["id"] == ticket_id)
        bodies = _bodies(box, ticket_id)
        assert ticket["priority"] == "high"  # the person's edit stands
        assert ticket["status"] == "hold"  # and the state change still arrived
        assert sum(n for b, n in bodies.items() if NOTE in b) == 1, bodies
        assert max(bodies.values()) == 1, bodies
