"""Comments of a whole export page from one read of Zendesk's incremental ticket event export.

Rules:
- A page of the ticket export holds tickets changed after the feed's previous position (the
  latest ``updated_at`` it delivered, ``since``). Any comment a ticket got since tiersync last saw
  it was made after that position, because a comment moves the ticket's ``updated_at``. So the
  page's new comments are the comment events from ``since`` (less ``MARGIN``, for stamps that run
  ahead under bursts) up to the page's latest ``updated_at``: one or a few reads of
  ``GET /api/v2/incremental/ticket_events?include=comment_events`` (1,000 events a page) instead of
  one comment list per ticket.
- A record's comments are then those made since the feed's position, not every comment of the
  ticket; the engine copies comments it has not seen, so older ones were copied when they were new.
  The ticket's first comment (its description, in the audit that created it) is left out, as in
  the comment list.
- Where the window is unknown (a record that did not come from the latest export page, a cursor
  written before ``since`` existed) or the event export cannot move past one instant (more than
  a page of events with one timestamp), the caller reads those tickets' comment lists instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

DESCRIPTION = "_tiersync_description"  # marks the creating update's comment: files only
MARGIN = 60.0  # seconds: the export's own hold-back, covering stamps that ran ahead
MAX_PAGES = 50  # event pages read for one ticket page before giving up on the window


@dataclass(frozen=True)
class EventWindow:
    """The ticket page the events cover: from ``start`` to ``end`` (Unix seconds), and the
    versions of its tickets."""

    start: float
    end: float
    versions: dict[str, str] = field(default_factory=dict)

    def covers(self, ticket_id: str, version: str) -> bool:
        return self.versions.get(ticket_id) == version


class WindowUnreadable(Exception):
    """The event export did not get past one instant: read comment lists instead."""


def _comments_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    children = [c for c in event.get("child_events") or [] if isinstance(c, dict)]
    comments = [c for c in children if c.get("event_type") == "Comment" and "body" in c]
    if any(c.get("event_type") == "Create" or c.get("type") == "Create" for c in children):
        # the creating update: its comment is the description, not copied as a comment, but
        # its files are the ticket's (core/attachments.py)
        return [dict(c, **{DESCRIPTION: True}) for c in comments]
    return comments


def window_comments(read_page: Callable[[float], dict[str, Any]], window: EventWindow,
                    ticket_ids: set[int]) -> dict[int, list[dict[str, Any]]]:
    """Comment events of ``ticket_ids`` made in ``window``, oldest first, each once."""
    found: dict[int, dict[str, dict[str, Any]]] = {t: {} for t in ticket_ids}
    start = max(0.0, window.start - MARGIN)
    for _ in range(MAX_PAGES):
        page = read_page(start)
        events = [e for e in page.get("ticket_events") or [] if isinstance(e, dict)]
        for event in events:
            if event.get("ticket_id") in found and float(event.get("timestamp") or 0) <= window.end:
                for comment in _comments_of(event):
                    found[event["ticket_id"]].setdefault(str(comment.get("id")), comment)
        end = float(page.get("end_time") or start)
        if page.get("end_of_stream", True) or not events or end > window.end:
            return {t: list(c.values()) for t, c in found.items()}
        if end <= start:
            raise WindowUnreadable(f"more than a page of ticket events at {start}")
        start = end
    raise WindowUnreadable(f"more than {MAX_PAGES} pages of ticket events")
