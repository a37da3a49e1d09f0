"""Progress of a long read (first sync, backfill, rebuild): records so far and rate, per tracker.

- On a terminal: a rich progress display on the console, one line per tracker with its
  records so far, its rate and the time elapsed; it stays on screen when the read ends.
- Elsewhere (a log file, journald, a container): a log line per tracker every
  ``every_seconds`` (10 s) while it reads, ``<what> progress: <tracker>: N record(s) so far,
  R record(s)/s``, and a last line with the total for a tracker that logged any, so a short run
  adds no lines at all.
- Pages are counted as they are committed (``page(tracker, records)``), from any thread (the
  daemon pulls its trackers in concurrent lanes). A tracker's rate is its records over the time
  from the start of the read to its last page.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Callable

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

log = logging.getLogger("tiersync.progress")


@dataclass
class TrackerProgress:
    """One tracker's read so far."""

    tracker: str
    started: float
    records: int = 0
    pages: int = 0
    last: float = 0.0  # when its last page was reported
    logged_at: float | None = None  # last periodic log line

    def rate(self) -> float:
        elapsed = self.last - self.started
        return self.records / elapsed if elapsed > 0 else 0.0


class ProgressReport:
    """Reports a read's progress (module rules); use it as a context manager."""

    def __init__(self, what: str, *, console: Console | None = None, every_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.what = what
        self.console = console or Console(stderr=True)
        self.every = every_seconds
        self.clock = clock
        self.trackers: dict[str, TrackerProgress] = {}
        self._started = clock()
        self._lock = threading.Lock()
        self._display: Progress | None = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> "ProgressReport":
        self._started = self.clock()
        if self.console.is_terminal:
            self._display = Progress(
                SpinnerColumn(), TextColumn("{task.description}"),
                TextColumn("{task.completed:,.0f} record(s)"), TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(), console=self.console, transient=False)
            self._display.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._display is not None:
            self._display.stop()
            return
        for progress in self.trackers.values():
            if progress.logged_at is not None:
                log.info("%s progress: %s: %s record(s) in %d page(s), %.1f record(s)/s, done",
                         self.what, progress.tracker, f"{progress.records:,}", progress.pages,
                         progress.rate(), extra={"tracker": progress.tracker})

    def page(self, tracker: str, records: int) -> None:
        """A page of ``records`` records of ``tracker`` is committed."""
        with self._lock:
            self._count(tracker, records)

    def _count(self, tracker: str, records: int) -> None:
        now = self.clock()
        progress = self.trackers.get(tracker)
        if progress is None:
            progress = self.trackers[tracker] = TrackerProgress(tracker, started=self._started)
        progress.records += records
        progress.pages += 1
        progress.last = now
        if self._display is not None:
            self._show(progress)
        elif now - (progress.logged_at or progress.started) >= self.every:
            progress.logged_at = now
            log.info("%s progress: %s: %s record(s) so far, %.1f record(s)/s", self.what, tracker,
                     f"{progress.records:,}", progress.rate(), extra={"tracker": tracker})

    def _show(self, progress: TrackerProgress) -> None:
        assert self._display is not None
        rate = f"{progress.rate():,.1f}/s"
        if progress.tracker not in self._tasks:
            self._tasks[progress.tracker] = self._display.add_task(
                f"{self.what} {progress.tracker}", total=None, rate=rate)
        self._display.update(self._tasks[progress.tracker], completed=progress.records, rate=rate)
