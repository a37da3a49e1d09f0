"""The one retry policy every connector uses, and HTTP-error classification.

The client libraries' own retry loops are switched off (see LIBRARIES.md); this module owns
retries: timeouts, connection errors, 5xx and 429 are retried with jittered exponential backoff,
honouring ``Retry-After`` (seconds or an HTTP date), bounded by attempts and total wait. Only
idempotent calls go through :func:`call_with_retry`; a create that fails with an unknown outcome
is retried only after a find-by-idempotency-key says it did not happen (see ``Connector`` users).
"""
from __future__ import annotations

import email.utils
import logging
import random
import time
from datetime import datetime, timezone
from typing import Callable, Mapping, TypeVar

import requests
import tenacity

from core.errors import (AuthError, Conflict, ConnectorError, NotFound, PermanentError,
                         RateLimited, Retryable)

log = logging.getLogger("tiersync.retry")
T = TypeVar("T")

# Patched in tests to avoid real sleeping; tenacity calls it with seconds.
sleep: Callable[[float], None] = time.sleep
# Called with (tracker, seconds) before each wait on a rate limit (the daemon's metrics).
rate_limit_observers: list[Callable[[str, float], None]] = []
# Called with (tracker, requests left) whenever a tracker's answer says how many are left.
rate_budget_observers: list[Callable[[str, float], None]] = []
BUDGET_HEADERS = ("X-Rate-Limit-Remaining", "X-RateLimit-Remaining")  # Zendesk; Jira, Azure DevOps


def watch_rate_budget(session: requests.Session, tracker: str) -> None:
    """Report the remaining rate budget each answer announces (before any hook that raises)."""
    def hook(response: requests.Response, *_args, **_kwargs) -> None:
        report_rate_budget(tracker, response.headers)
    session.hooks["response"].insert(0, hook)


def report_rate_budget(tracker: str, headers: Mapping[str, str]) -> None:
    for header in BUDGET_HEADERS:
        value = headers.get(header)
        if value is not None and value.replace(".", "", 1).isdigit():
            for observe in list(rate_budget_observers):
                observe(tracker, float(value))
            return


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def classify_status(tracker: str, status: int, headers: Mapping[str, str] | None, message: str,
                    credential: str = "credentials") -> ConnectorError:
    """The typed error for an HTTP status code."""
    headers = headers or {}
    if status == 429:
        after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
        return RateLimited(f"rate limited (HTTP 429): {message}", retry_after=after,
                           tracker=tracker, status=status)
    if status in (401, 403):
        return AuthError(f"HTTP {status}: the tracker refused {credential}: {message}",
                         tracker=tracker, status=status)
    if status == 404:
        return NotFound(f"not found (HTTP 404): {message}", tracker=tracker, status=status)
    if status in (409, 412):
        return Conflict(f"conflict (HTTP {status}): {message}", tracker=tracker, status=status)
    if status in (408, 425) or status >= 500:
        return Retryable(f"HTTP {status}: {message}", tracker=tracker, status=status)
    return PermanentError(f"HTTP {status}: {message}", tracker=tracker, status=status)


def classify_transport(tracker: str, exc: BaseException) -> ConnectorError | None:
    """Timeouts and connection errors from requests/urllib3 as Retryable, else None."""
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        return Retryable(f"{type(exc).__name__}: {exc}", tracker=tracker)
    return None


class _WaitRetryAfter(tenacity.wait.wait_base):
    """Jittered exponential backoff, or the server's Retry-After when it gave one."""

    def __init__(self, initial: float, maximum: float):
        self.initial = initial
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.maximum)
        backoff = self.initial * (2 ** (retry_state.attempt_number - 1))
        return min(self.maximum, backoff) * random.uniform(0.5, 1.0)


def call_with_retry(fn: Callable[[], T], *, max_attempts: int = 5, max_wait: float = 120.0,
                    initial_wait: float = 0.5, what: str = "call") -> T:
    """Run ``fn`` retrying Retryable errors; re-raises the last error when the budget is spent."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Retryable),
        stop=tenacity.stop_after_attempt(max_attempts) | tenacity.stop_after_delay(max_wait),
        wait=_WaitRetryAfter(initial_wait, max_wait),
        sleep=lambda seconds: sleep(seconds),
        reraise=True,
        before_sleep=lambda state: _before_sleep(state, what),
    )
    return retrying(fn)


def _before_sleep(state: tenacity.RetryCallState, what: str) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("%s failed (attempt %d): %s; retrying", what, state.attempt_number, exc or "?")
    if isinstance(exc, RateLimited):
        for observe in list(rate_limit_observers):
            observe(exc.tracker or "?", state.upcoming_sleep)
