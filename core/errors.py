"""Typed errors shared by the core and the connectors.

Connectors translate HTTP failures into these; the engine decides what to retry, quarantine or
dead-letter from the type alone. Only ``sync.py`` turns errors into exit codes.
"""
from __future__ import annotations


class TiersyncError(Exception):
    """Base of every error tiersync raises on purpose."""


class ConfigError(TiersyncError):
    """The configuration, a mapping file or the policy file is invalid (exit code 2)."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class MappingError(TiersyncError):
    """A record could not be mapped; names the mapping file, key and value."""


class BadRecord(TiersyncError):
    """A tracker record is malformed; it is quarantined with this reason."""

    def __init__(self, reason: str, *, tracker: str | None = None, record_id: str | None = None):
        self.reason = reason
        self.tracker = tracker
        self.record_id = record_id
        where = f"{tracker}:{record_id}: " if tracker or record_id else ""
        super().__init__(f"{where}{reason}")


class ConnectorError(TiersyncError):
    """Any failure talking to a tracker."""

    def __init__(self, message: str, *, tracker: str | None = None, status: int | None = None):
        self.tracker = tracker
        self.status = status
        super().__init__(f"[{tracker}] {message}" if tracker else message)


class Retryable(ConnectorError):
    """Timeouts, dropped connections, 5xx: try again later."""


TRACKER, PULL = "tracker", "pull"  # what a rate limit holds back (RateLimited.scope)


class RateLimited(Retryable):
    """HTTP 429 (or a vendor's delay signal); ``retry_after`` in seconds when the server said.

    ``scope`` says what it holds back: ``TRACKER``, every call to the tracker (the account's
    limit), or ``PULL``, only the change feed, whose endpoint has a limit of its own (Zendesk's
    incremental exports): writes and reads of single records go on meanwhile."""

    def __init__(self, message: str, *, retry_after: float | None = None, scope: str = TRACKER,
                 **kwargs):
        self.retry_after = retry_after
        self.scope = scope
        super().__init__(message, **kwargs)


class UnknownOutcome(Retryable):
    """A write failed in a way that may or may not have taken effect (timeout/5xx on a create)."""


class Conflict(ConnectorError):
    """The remote record changed since the version we based the write on."""


class NotFound(ConnectorError):
    """The remote record (or endpoint) does not exist."""


class AuthError(ConnectorError):
    """The tracker refused the credentials; the message names tracker and credential variable."""


class PermanentError(ConnectorError):
    """The tracker rejected the request (4xx other than the above); retrying will not help."""


class NotTheApi(PermanentError):
    """The tracker's URL answered with something that is not its API's answer: an HTML page (a
    login or proxy page), an empty body or JSON of an unexpected shape. Not retried: the pull stops
    with the cursor where it was (exit code 2)."""
