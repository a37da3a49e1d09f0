"""The Zendesk simulator's vendor limits in the realistic profile (simulators/profile.py).

Each from developer.zendesk.com, windows scaled by the profile's ``time_scale``:
- the incremental export takes 10 requests a minute, then 429 with ``Retry-After``
  (api-reference/introduction/rate-limits/: "Incremental Exports: 10 requests per minute");
- Update Ticket takes 100 requests a minute per account and 30 updates of one ticket per 10
  minutes, then 429 with ``Retry-After`` (same page, "Update Ticket endpoint"); a request the
  per-ticket limit refuses does not count against the account;
- the export answers 403 to anyone but an admin (api-reference/ticketing/ticket-management/
  incremental_exports/: "Allowed For: Admins").
"""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from simulators.profile import Window, retry_after_text

EXPORT_HOLD_BACK = 60.0  # seconds the export leaves out (zendesk_render.export_page)
EXPORT_LIMIT = 10  # incremental export requests per minute
UPDATE_LIMITS = (100, 30)  # Update Ticket: per account per minute, per ticket per 10 minutes


def export_limited(sim: Any) -> Response | None:
    """The incremental export: 10 requests a minute (or the simulator's own setting)."""
    limit = sim.export_limit_per_minute
    if limit is None:
        limit = EXPORT_LIMIT if sim.profile.realistic else 0
    if not limit:
        return None
    with sim.lock:
        if sim._export_window is None:
            sim._export_window = Window(limit, sim.profile.seconds(60))
        wait = sim._export_window.take()
    if not wait:
        return None
    return _limited(sim, "APIRateLimitExceeded", "Number of allowed incremental export API "
                    "requests per minute exceeded", wait)


def update_limited(sim: Any, ticket_id: int) -> Response | None:
    """Update Ticket: per account per minute, and per ticket per ten minutes."""
    limits = sim.update_limits
    if limits is None:
        limits = UPDATE_LIMITS if sim.profile.realistic else None
    if not limits:
        return None
    with sim.lock:
        account = sim._update_windows.setdefault(
            "account", Window(limits[0], sim.profile.seconds(60)))
        ticket = sim._update_windows.setdefault(
            ticket_id, Window(limits[1], sim.profile.seconds(600)))
        wait = account.take()
        if not wait:
            wait = ticket.take()
            if wait:
                account.events.pop()  # refused: not counted against the account
    if not wait:
        return None
    return _limited(sim, "TooManyRequests", f"Too many updates of ticket {ticket_id}; "
                    "rate limit exceeded", wait)


def _limited(sim: Any, error: str, description: str, wait: float) -> Response:
    response = jsonify({"error": error, "description": description})
    response.status_code = 429
    response.headers["Retry-After"] = retry_after_text(wait, sim.profile)
    return response


def export_refused(sim: Any) -> Response | None:
    """The export is for admins only (Allowed For: Admins)."""
    if not sim.profile.realistic or sim._actor().get("role") == "admin":
        return None
    response = jsonify({"error": "Forbidden",
                        "description": "You do not have access to this page. Please contact "
                                       "the account owner of this help desk for further help."})
    response.status_code = 403
    return response
