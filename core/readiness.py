"""Liveness and readiness of a daemon, for ``/healthz`` and ``/readyz``.

Alive: the process answers. Ready, all of:
- the store answers a query;
- the last sync cycle finished within 3x the daemon's interval (and at least one has);
- no tracker is failing authentication (the last call to it was not refused with 401/403);
- its configuration is the one in force among the daemons on the store (core/config_agreement.py).
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import text

from core.model import utcnow


class Health:
    def __init__(self, store: Any, interval_seconds: float,
                 clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.interval = interval_seconds
        self.clock = clock
        self.last_cycle: datetime | None = None
        self.auth_failing: dict[str, str] = {}
        self.stepped_back: str | None = None  # why another daemon's configuration is in force
        self._lock = threading.Lock()

    def cycle_finished(self, at: datetime | None = None) -> None:
        self.last_cycle = at or self.clock()

    def auth_failed(self, tracker: str, message: str) -> None:
        with self._lock:
            self.auth_failing[tracker] = message

    def auth_ok(self, tracker: str) -> None:
        with self._lock:
            self.auth_failing.pop(tracker, None)

    def store_problem(self) -> str | None:
        try:
            with self.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not reachable"
            return f"store unreachable: {type(exc).__name__}"
        return None

    def problems(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        found = []
        store = self.store_problem()
        if store:
            found.append(store)
        if self.last_cycle is None:
            found.append("no sync cycle has finished yet")
        else:
            age = (self.clock() - self.last_cycle).total_seconds()
            if age > 3 * self.interval:
                found.append(f"last cycle finished {age:.0f}s ago (more than 3 x {self.interval:g}s)")
        with self._lock:
            found.extend(f"tracker {name} is failing authentication" for name in sorted(self.auth_failing))
        if self.stepped_back:
            found.append(self.stepped_back)
        return found


def health_routes(listener: Any, health: Health) -> None:
    """``/healthz`` answers 200 while the process runs; ``/readyz`` 200 or 503 with the reasons."""
    from werkzeug.wrappers import Response

    def healthz(_request) -> Response:
        return Response("ok\n", mimetype="text/plain")

    def readyz(_request) -> Response:
        problems = health.problems()
        body = "ready\n" if not problems else "".join(f"not ready: {p}\n" for p in problems)
        return Response(body, status=200 if not problems else 503, mimetype="text/plain",
                        headers={"Cache-Control": "no-store"})
    listener.route("/healthz", healthz)
    listener.route("/readyz", readyz)
