"""The daemon's loop: a polling cycle every interval, and webhook hints read at once beside it.

Cycles pull each connector in its own lane (core/lanes.py); webhook hints are read in a thread
of their own, one hint pass at a time, while a cycle runs or between cycles, so a hint never
waits for a page, a rate-limit wait or a backlog of the poll. Every write takes the store's
transaction lock and every send the target tracker's send lock (core/lanes.py), so a hint
races neither a lane nor another hint for one record. A hint waits at most
``coalesce_seconds`` so that a burst for one record becomes one read. An unreachable store
does not end the daemon: the cycle is logged with its traceback, readiness turns false, and
the next cycle tries again.

Several daemons on one PostgreSQL store (core/worker.py): before each cycle the worker takes its
fair share of pull leases; its heartbeat sets ``wake`` when a lease is free or a dead daemon's
actions wait, which starts the next cycle at once (a takeover does not wait for the interval).
Hinted reads of another daemon's tracker are fine: writes take the store's writers' lock, and
a hint pass sends only actions it has claimed (core/hints.py). A daemon whose configuration is
not the one in force (core/config_agreement.py) runs no cycle and no hint pass, and is not ready.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from typing import Any, Iterator

from sqlalchemy.exc import DBAPIError

from core.hints import HintQueue, run_hints
from core.logfields import run_context

log = logging.getLogger("tiersync.daemon")


class DaemonLoop:
    def __init__(self, engine: Any, interval: float, stop: threading.Event, *,
                 hints: HintQueue | None = None, metrics: Any = None, health: Any = None,
                 coalesce_seconds: float = 0.05, drift_due: Any = None,
                 wake: threading.Event | None = None, first_cycle_progress: Any = None):
        self.engine = engine
        self.wake = wake or threading.Event()
        # a context manager factory (core/progress.py) reporting the first cycle's reads
        self.first_cycle_progress = first_cycle_progress
        self.drift_due = drift_due or (lambda: False)
        self.interval = interval
        self.stop = stop
        self.hints = hints
        self.metrics = metrics
        self.health = health
        self.coalesce = coalesce_seconds

    def run(self) -> None:
        reader = None
        if self.hints is not None:
            reader = threading.Thread(target=self._read_hints, name="hints", daemon=True)
            reader.start()
        try:
            self._cycles()
        finally:
            if reader is not None:
                reader.join(60)

    def _cycles(self) -> None:
        first = True
        while not self.stop.is_set():
            drift = self.drift_due()
            self.wake.clear()
            if self._stepped_back():
                self._between_cycles(time.monotonic() + self.interval)
                continue
            with self._progress(first):
                self._pass("poll", lambda run_id: self._cycle(run_id, drift))
            first = False
            self._between_cycles(time.monotonic() + self.interval)

    @contextlib.contextmanager
    def _progress(self, first: bool) -> Iterator[None]:
        if not first or self.first_cycle_progress is None:
            yield
            return
        with self.first_cycle_progress() as progress:
            self.engine.on_page = progress.page
            try:
                yield
            finally:
                self.engine.on_page = None

    def _cycle(self, run_id: str, drift: bool) -> Any:
        if self.engine.worker is not None:
            self.engine.worker.balance()
        return self.engine.run_cycle(stop=self.stop.is_set, run_id=run_id, drift_check=drift)

    def _stepped_back(self) -> bool:
        """Whether another daemon's configuration is in force (readiness says so)."""
        worker = self.engine.worker
        current = worker.steps_back() if worker is not None else None
        if self.health is not None:
            self.health.stepped_back = (None if current is None else
                                        f"daemon {current.worker} runs other policy or mapping "
                                        f"files (rules {current.fingerprint}); this one steps back")
        return current is not None

    def _between_cycles(self, deadline: float) -> None:
        """Wait for the next cycle, or an early wake (a takeover) or the stop signal."""
        while not self.stop.is_set() and not self.wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wake.wait(min(left, 0.5))

    def _read_hints(self) -> None:
        """The hint thread: each burst of hints, after ``coalesce_seconds``, is one pass."""
        while not self.stop.is_set():
            if self.hints.wait(0.5):
                self.stop.wait(self.coalesce)
                hinted = self.hints.take()
                if hinted and self._stepped_back():
                    log.info("webhook hints %s left to the daemon in force", json.dumps(hinted))
                elif hinted:
                    self._pass("webhook", lambda run_id: run_hints(
                        self.engine, hinted, self.stop.is_set, run_id), hinted)

    def _pass(self, mode: str, work: Any, hinted: dict | None = None) -> None:
        started = time.monotonic()
        prefix = "run-" if mode == "poll" else "hint-"
        try:
            with run_context(prefix + uuid.uuid4().hex[:12]) as run_id:
                report = work(run_id)
        except DBAPIError as exc:
            log.error("%s pass failed, the store is unreachable: %s", mode, exc, exc_info=True)
            return
        except Exception as exc:  # noqa: BLE001 - a hint pass must never end the hint thread
            if mode == "poll":
                raise
            log.error("webhook pass failed (the next poll catches up): %s", exc, exc_info=True)
            return
        seconds = time.monotonic() - started
        extra = {"run_id": report.run_id}
        if mode == "poll":
            log.info("cycle %s: %s", report.run_id, json.dumps(report.as_dict()), extra=extra)
            if self.health is not None and not report.stopped_early:
                self.health.cycle_finished()
            if self.metrics is not None:
                self.metrics.last_cycle.set(time.time())
        else:
            log.info("webhook hints %s read %s: %s", report.run_id, json.dumps(hinted),
                     json.dumps(report.as_dict()), extra=extra)
        if self.metrics is not None:
            self.metrics.record_report(report, mode, seconds)
            self.metrics.observe_writes(self.engine.store)
