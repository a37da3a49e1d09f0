"""``POST /webhooks/<tracker name>`` on the daemon's listener.

Rules, in this order:
- a tracker without a ``webhook`` section accepts nothing: 404, counted ``not-configured``;
- a body over ``max_body_bytes`` (by Content-Length, or as read): 413, counted ``oversized``;
- a request that fails the tracker's verification (missing, forged or stale signature, wrong
  credentials): 401, counted by reason; nothing is queued;
- a verified request that names no record: 202, counted ``no-record``;
- otherwise the named record is queued as a hint (202, counted ``accepted``; a record already
  waiting counts ``coalesced``).
The reply never echoes the body or a secret.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from core.model import utcnow

log = logging.getLogger("tiersync.webhooks")


@dataclass(frozen=True)
class WebhookEndpoint:
    """One tracker's verifier: ``verify(headers, body, now)`` returns the payload or raises an
    exception with a ``reason`` attribute; ``record_ids(payload)`` names the records."""

    tracker: str
    verify: Callable[[Mapping[str, str], bytes, datetime], dict[str, Any]]
    record_ids: Callable[[dict[str, Any]], list[str]]
    max_body_bytes: int
    rejected: type[Exception]


def _reply(status: int, message: str, **extra: Any) -> Response:
    return Response(json.dumps({"status": message, **extra}) + "\n", status=status,
                    mimetype="application/json")


def webhook_handler(tracker: str, endpoint: WebhookEndpoint | None, hints: Any, metrics: Any,
                    clock: Callable[[], datetime] = utcnow) -> Callable[[Request], Response]:
    def count(result: str) -> None:
        metrics.webhooks.labels(tracker, result).inc()

    def handler(request: Request) -> Response:
        if endpoint is None:
            count("not-configured")
            return _reply(404, f"tracker {tracker} accepts no webhooks (no webhook secret configured)")
        if (request.content_length or 0) > endpoint.max_body_bytes:
            count("oversized")
            return _reply(413, "body too large")
        request.max_content_length = endpoint.max_body_bytes
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            count("oversized")
            return _reply(413, "body too large")
        try:
            payload = endpoint.verify(request.headers, body, clock())
        except endpoint.rejected as exc:
            reason = getattr(exc, "reason", "rejected")
            count(reason)
            log.warning("webhook for %s refused (%s): %s", tracker, reason, exc,
                        extra={"tracker": tracker})
            return _reply(400, "not a JSON object") if reason == "unreadable" else \
                _reply(401, "unauthorized")
        ids = endpoint.record_ids(payload)
        if not ids:
            count("no-record")
            return _reply(202, "accepted, names no record")
        fresh = hints.add(tracker, ids)
        count("accepted" if fresh else "coalesced")
        if not fresh:
            metrics.hints_coalesced.labels(tracker).inc()
        return _reply(202, "accepted", records=ids)
    return handler


def webhook_routes(listener: Any, trackers: list[str], endpoints: dict[str, WebhookEndpoint],
                   hints: Any, metrics: Any) -> None:
    for name in trackers:
        listener.route(f"/webhooks/{name}", webhook_handler(name, endpoints.get(name), hints, metrics),
                       methods=("POST",))
