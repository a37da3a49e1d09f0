"""Progress of a long read (core/progress.py): log lines off a terminal, a rich display on one."""
from __future__ import annotations

import io
import logging
import threading

from rich.console import Console

from connectors.memory import MemoryConnector
from core.daemon_loop import DaemonLoop
from core.progress import ProgressReport
from tests.engine_helpers import make_engine, partner_ticket


class Ticks:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float):
        self.step, self.now = step, 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def engine_with_records(tmp_path, zendesk: int = 120, azure_devops: int = 60):
    trackers = {"zendesk": MemoryConnector("zendesk"), "azure_devops": MemoryConnector("azure_devops")}
    for n in range(zendesk):
        # not escalated (no escalate_tier2 tag): read, counted and left alone, which is quick
        trackers["zendesk"].put(partner_ticket(subject=f"1234567890{n:04d} - case {n}", tags=[]))
    for n in range(azure_devops):
        trackers["azure_devops"].put({"System.Title": f"unrelated item {n}", "System.State": "New"})
    engine, _ = make_engine(tmp_path / "store.db", trackers=trackers)
    engine.settings.concurrent_pulls = False  # one tracker after the other: a known order
    return engine


def progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tiersync.progress"]


def plain() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)


def test_log_lines_every_interval_with_counts_and_rate_per_tracker(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tiersync.progress")
    engine = engine_with_records(tmp_path)  # pages of 50: zendesk 50, 50, 20; azure_devops 50, 10
    # the clock moves 6 s a read: started at 6, zendesk pages at 12, 18, 24, azure_devops 30, 36;
    # a rate counts from the start of the read
    with ProgressReport("sync", console=plain(), every_seconds=10, clock=Ticks(6)) as report:
        engine.on_page = report.page
        engine.run_cycle()
    assert progress_lines(caplog) == [
        "sync progress: zendesk: 100 record(s) so far, 8.3 record(s)/s",
        "sync progress: azure_devops: 50 record(s) so far, 2.1 record(s)/s",
        "sync progress: zendesk: 120 record(s) in 3 page(s), 6.7 record(s)/s, done",
        "sync progress: azure_devops: 60 record(s) in 2 page(s), 2.0 record(s)/s, done",
    ]
    assert {r.tracker for r in caplog.records if r.name == "tiersync.progress"} == \
        {"zendesk", "azure_devops"}


def test_a_short_read_logs_nothing(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tiersync.progress")
    engine = engine_with_records(tmp_path, zendesk=10, azure_devops=0)
    with ProgressReport("sync", console=plain(), every_seconds=10, clock=Ticks(1)) as report:
        engine.on_page = report.page
        engine.run_cycle()
    assert progress_lines(caplog) == []
    assert report.trackers["zendesk"].records == 10


def test_on_a_terminal_a_rich_display_per_tracker(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tiersync.progress")
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    engine = engine_with_records(tmp_path)
    with ProgressReport("backfill", console=console, clock=Ticks(6)) as report:
        engine.on_page = report.page
        engine.run_cycle()
    shown = screen.getvalue()
    assert "backfill zendesk" in shown and "120 record(s)" in shown and "6.7/s" in shown
    assert "backfill azure_devops" in shown and "60 record(s)" in shown and "2.0/s" in shown
    assert progress_lines(caplog) == []  # the display replaces the log lines


def test_the_daemon_reports_its_first_cycle_only(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tiersync.progress")
    engine = engine_with_records(tmp_path, zendesk=60, azure_devops=0)
    stop, reports = threading.Event(), []

    def first_cycle():
        report = ProgressReport("first cycle", console=plain(), every_seconds=0.001)
        reports.append(report)
        return report

    loop = DaemonLoop(engine, 0.01, stop, first_cycle_progress=first_cycle)
    cycles = []
    original = engine.run_cycle

    def counted(**kwargs):
        cycles.append(engine.on_page)
        if len(cycles) == 2:
            stop.set()
        return original(**kwargs)

    engine.run_cycle = counted
    loop.run()
    assert len(reports) == 1 and reports[0].trackers["zendesk"].records == 60
    assert cycles[0] is not None and cycles[1] is None  # the second cycle reports nothing
    assert any(line.startswith("first cycle progress: zendesk: 60 record(s) in 2 page(s)")
               for line in progress_lines(caplog))
