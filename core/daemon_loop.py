"""The daemon's loop: a polling cycle every interval, and webhook hints read between cycles.

Everything that writes runs in this one thread (cycles and hinted reads alike), so a hint can
never race a poll or another hint for the same record. A hint waits at most
``coalesce_seconds`` so that a burst for one record becomes one read. An unreachable store
does not end the daemon: the cycle is logged with its traceback, readiness turns false, and
the next cycle tries again.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from sqlalchemy.exc import DBAPIError

from core.hints import HintQueue, run_hints
from core.logfields import run_context

log = logging.getLogger("tiersync.daemon")


class DaemonLoop:
    def __init__(self, engine: Any, interval: float, stop: threading.Event, *,
                 hints: HintQueue | None = None, metrics: Any = None, health: Any = None,
                 coalesce_seconds: float = 0.05, drift_due: Any = None):
        self.engine = engine
        self.drift_due = drift_due or (lambda: False)
        self.interval = interval
        self.stop = stop
        self.hints = hints
        self.metrics = metrics
        self.health = health
        self.coalesce = coalesce_seconds

    def run(self) -> None:
        if self.hints is not None:
            for connector in self.engine.connectors.values():
                if hasattr(connector, "between_pages"):
                    connector.between_pages = self._hints_during_poll
        while not self.stop.is_set():
            drift = self.drift_due()
            self._pass("poll", lambda run_id: self.engine.run_cycle(
                stop=self.stop.is_set, run_id=run_id, drift_check=drift))
            self._between_cycles(time.monotonic() + self.interval)

    def _between_cycles(self, deadline: float) -> None:
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.hints is None:
                self.stop.wait(left)
            elif self.hints.wait(min(left, 0.5)):
                self.stop.wait(self.coalesce)
                hinted = self.hints.take()
                self._pass("webhook", lambda run_id: run_hints(self.engine, hinted,
                                                               self.stop.is_set, run_id), hinted)

    def _hints_during_poll(self) -> None:
        """Read waiting hints between two pages of a poll; the poll's run id is put back."""
        if self.hints is None or not self.hints.depth() or self.stop.is_set():
            return
        planner = self.engine.planner
        poll_run = planner.run_id
        hinted = self.hints.take()
        try:
            self._pass("webhook", lambda run_id: run_hints(self.engine, hinted, self.stop.is_set,
                                                           run_id), hinted)
        finally:
            planner.run_id = poll_run

    def _pass(self, mode: str, work: Any, hinted: dict | None = None) -> None:
        started = time.monotonic()
        prefix = "run-" if mode == "poll" else "hint-"
        try:
            with run_context(prefix + uuid.uuid4().hex[:12]) as run_id:
                report = work(run_id)
        except DBAPIError as exc:
            log.error("%s pass failed, the store is unreachable: %s", mode, exc, exc_info=True)
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
