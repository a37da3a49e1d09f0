"""A connector seen by the daemon's metrics and health: every call passes through unchanged.

- A call refused with AuthError marks the tracker failing authentication (readiness) until a
  later call to it succeeds.
- A RateLimited error counts as a rate-limit wait of its ``retry_after``.
- Each record read (polled or hinted) observes the ``read`` stage of propagation lag: the time
  from its change in the tracker (``updated_at``) until tiersync read it.
"""
from __future__ import annotations

from typing import Any, Iterator

from core.errors import AuthError, RateLimited
from core.model import utcnow

READS = ("fetch_changes", "fetch_records", "get")


class ObservedConnector:
    def __init__(self, inner: Any, metrics: Any, health: Any):
        self._inner = inner
        self._metrics = metrics
        self._health = health

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value) or name.startswith("_"):
            return value
        if name == "fetch_changes":
            return self._pages
        return lambda *args, **kwargs: self._call(name, value, args, kwargs)

    def _call(self, name: str, fn: Any, args: tuple, kwargs: dict) -> Any:
        try:
            result = fn(*args, **kwargs)
        except AuthError as exc:
            self._failed_auth(exc)
            raise
        except RateLimited as exc:
            self._metrics.rate_limited(self._inner.name, exc.retry_after or 0.0)
            raise
        self._health.auth_ok(self._inner.name)
        if name in READS:
            self._observe(result if isinstance(result, list) else [result])
        return result

    def _pages(self, cursor: Any) -> Iterator[Any]:
        pages = self._call("open", self._inner.fetch_changes, (cursor,), {})
        while True:
            try:
                page = self._call("next", next, (pages,), {})
            except StopIteration:
                return
            self._observe(page.records)
            yield page

    def _failed_auth(self, exc: AuthError) -> None:
        self._health.auth_failed(self._inner.name, str(exc))
        self._metrics.auth_failing.labels(self._inner.name).set(1)

    def _observe(self, records: list[Any]) -> None:
        self._metrics.auth_failing.labels(self._inner.name).set(0)
        now = utcnow()
        for record in records:
            updated = getattr(record, "updated_at", None)
            if updated is not None:
                self._metrics.lag.labels("read").observe(max(0.0, (now - updated).total_seconds()))
