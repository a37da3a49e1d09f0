"""The Zendesk simulator's incremental ticket event export (time-based), from the tickets' audits.

From developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/
("Incremental Ticket Event Export", ``GET /api/v2/incremental/ticket_events?start_time=``) and
the vendor's spec (specs/zendesk/incremental.yml, ``IncrementalTicketEvents``):
- one event per ticket update (an audit), with the fields changed in ``child_events``; events at
  or after ``start_time`` in time order, up to 1,000 a page; ``end_time`` is the time of the page's
  last event and ``next_page`` starts there, so a time-based page repeats the events of its last
  instant (developer.zendesk.com/documentation/ticketing/managing-tickets/
  using-the-incremental-export-api/, "Time-based incremental exports");
- a comment of the update is in ``child_events`` only with ``include=comment_events``; without
  it the update carries just ``comment_present`` and ``comment_public`` (spec, "Sideloading");
- events within the last minute are left out, as in every incremental export
  (support.zendesk.com/hc/en-us/articles/8143500919322);
- a ``start_time`` in the future or not a number answers 400; admins only and 10 requests a
  minute, counted with the ticket export (the harsher reading of "10 requests per minute to these
  endpoints": one budget for both), enforced by the caller (simulators/zendesk_limits.py).
Under a scaled profile the ``timestamp`` keeps the stamps' scaled precision (simulators/
zendesk_state.py: ``updated_at`` in scaled whole seconds), so it may carry a fraction.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from simulators.zendesk_state import ZendeskState
from simulators.zendesk_values import ApiError, parse_iso

EVENTS_MAX_PAGE = 1000


def _start(value: str | None, now: float) -> float:
    try:
        start = float(value) if value is not None else None
    except ValueError:
        start = None
    if start is None:
        raise ApiError(400, "InvalidValue", "start_time must be a Unix epoch time")
    if start > now:
        raise ApiError(400, "InvalidValue", "start_time is in the future")
    return start


def _stamp(seconds: float, quantum: float) -> float | int:
    if quantum >= 1:
        return int(seconds)
    return round(seconds, 3)


def _child(event: dict[str, Any], with_comments: bool) -> dict[str, Any]:
    if event.get("type") != "Comment":
        return {**event, "event_type": event.get("type")}
    if with_comments:
        return {**event, "event_type": "Comment"}
    return {"id": event["id"], "comment_present": True, "comment_public": bool(event.get("public")),
            "event_type": "Comment"}


def _events(state: ZendeskState, with_comments: bool) -> list[tuple[float, int, dict[str, Any]]]:
    quantum = state.quantum.total_seconds()
    out = []
    for ticket_id, row in state.tickets.items():
        for audit in row.audits:
            stamp = state.audit_stamps.get(audit["id"]) or parse_iso(audit["created_at"])
            at = stamp.timestamp()
            out.append((at, audit["id"], {
                "id": audit["id"], "ticket_id": ticket_id, "timestamp": _stamp(at, quantum),
                "created_at": audit["created_at"], "updater_id": audit.get("author_id"),
                "via": audit.get("via"), "event_type": "Audit",
                "child_events": [_child(e, with_comments) for e in audit.get("events") or []]}))
    out.sort(key=lambda item: (item[0], item[1]))
    return out


def ticket_events_page(state: ZendeskState, base: str, *, start_time: str | None,
                       include: str | None, hold_back: float) -> dict[str, Any]:
    """One page of the time-based ticket event export (see the module rules)."""
    now = state.clock().timestamp()
    start = _start(start_time, now)
    with_comments = "comment_events" in {p.strip() for p in (include or "").split(",")}
    cutoff = now - hold_back
    quantum = state.quantum.total_seconds()
    wanted = [e for at, _, e in _events(state, with_comments) if _stamp(at, quantum) >= start
              and at <= cutoff]
    page = wanted[:EVENTS_MAX_PAGE]
    end_time = page[-1]["timestamp"] if page else _stamp(min(cutoff, now), quantum)
    end_time = max(end_time, _stamp(start, quantum))
    query = {"start_time": end_time, **({"include": include} if include else {})}
    return {"ticket_events": page, "count": len(page), "end_time": end_time,
            "end_of_stream": len(wanted) <= EVENTS_MAX_PAGE,
            "next_page": f"{base}/api/v2/incremental/ticket_events.json?{urlencode(query)}"}
