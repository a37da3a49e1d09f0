"""Small pieces of the Zendesk connector: the export cursor, bulk-update job results, the
people cache and time parsing."""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Literal

from connectors import retry
from core.connector import TIERSYNC_COMMENT_MARK, OriginRef
from core.errors import Retryable

SEEN_LIMIT = 500  # (ticket id, updated_at) pairs remembered across pages and runs


def parse_time(value: str | datetime | None) -> datetime | None:
    """Zendesk's ISO 8601 timestamps ('2026-01-05T09:00:00Z') as aware datetimes."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def start_timestamp(start_at: datetime | Literal["epoch"] | None) -> int:
    """The export's first ``start_time``: 'epoch' is 0, nothing is 30 days ago."""
    if start_at == "epoch":
        return 0
    start = parse_time(start_at) or datetime.now(timezone.utc) - timedelta(days=30)
    return int(start.timestamp())


def find_comment(comments: list[dict[str, Any]], body: str, public: bool,
                 since: datetime) -> str | None:
    """The newest comment with this body and visibility created after ``since``, if any."""
    for comment in reversed(comments):
        created = parse_time(comment.get("created_at"))
        if (comment.get("body") or "").strip() == body.strip() and \
                bool(comment.get("public")) == public and (created is None or created >= since):
            return str(comment["id"])
    return None


@dataclass
class ExportCursor:
    """tiersync's cursor over the incremental export: Zendesk's ``after_cursor`` plus the
    (id, updated_at) pairs recently delivered, so that a ticket Zendesk exports again without a
    new ``updated_at`` (system updates, time-based pages overlapping) is not delivered twice."""

    after: str | None = None
    seen: OrderedDict[str, str] = field(default_factory=OrderedDict)
    # the latest updated_at delivered (Unix seconds): where the next page's comments start
    since: float | None = None

    @classmethod
    def load(cls, text: str | None) -> "ExportCursor":
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except ValueError:
            return cls(after=text)  # a bare Zendesk cursor
        if not isinstance(data, dict):
            return cls(after=str(text))
        since = data.get("since")
        return cls(after=data.get("after"), seen=OrderedDict(data.get("seen") or {}),
                   since=float(since) if isinstance(since, (int, float)) else None)

    def dump(self) -> str:
        return json.dumps({"after": self.after, "seen": self.seen, "since": self.since},
                          separators=(",", ":"))

    def advance(self, updated: Iterable[str]) -> None:
        """Move ``since`` to the latest of ``updated`` (ISO stamps of a page's tickets)."""
        stamps = [t.timestamp() for t in map(_time_or_none, updated) if t is not None]
        if stamps:
            self.since = max([*stamps, self.since or 0.0])

    def is_new(self, ticket_id: str, updated_at: str) -> bool:
        before = self.seen.get(ticket_id)
        if before is None:
            return True
        return (parse_time(updated_at) or datetime.min.replace(tzinfo=timezone.utc)) > \
            (parse_time(before) or datetime.min.replace(tzinfo=timezone.utc))

    def remember(self, ticket_id: str, updated_at: str) -> None:
        self.seen.pop(ticket_id, None)
        self.seen[ticket_id] = updated_at
        while len(self.seen) > SEEN_LIMIT:
            self.seen.popitem(last=False)


@dataclass(frozen=True)
class BulkResult:
    """The outcome of one ticket in an ``update_many`` job."""

    remote_id: str
    ok: bool
    error: str | None = None


def job_results(job: dict[str, Any], ids: list[int]) -> list[BulkResult]:
    """Per-ticket results of a finished job, in the order of ``ids``."""
    status = job.get("status")
    if status != "completed":
        reason = f"job {job.get('id')} ended {status}: {job.get('message') or 'no message'}"
        return [BulkResult(str(i), False, reason) for i in ids]
    by_id: dict[int, dict[str, Any]] = {}
    for result in job.get("results") or []:
        if isinstance(result, dict) and result.get("id") is not None:
            by_id[int(result["id"])] = result
    out = []
    for ticket_id in ids:
        result = by_id.get(ticket_id)
        if result is None:
            out.append(BulkResult(str(ticket_id), False, "no result for this ticket in the job"))
        elif result.get("success") is False or result.get("error") or result.get("errors"):
            detail = result.get("details") or result.get("errors") or result.get("error")
            out.append(BulkResult(str(ticket_id), False, str(detail)))
        else:
            out.append(BulkResult(str(ticket_id), True))
    return out


def wait_for_job(job: dict[str, Any], fetch: Callable[[str], dict[str, Any]], *, poll: float,
                 timeout: float, tracker: str) -> dict[str, Any]:
    """Poll a job status until it leaves queued/working; Retryable after ``timeout`` seconds."""
    waited = 0.0
    while job.get("status") in ("queued", "working", None) and job.get("id"):
        if waited >= timeout:
            raise Retryable(f"update_many job {job['id']} still {job.get('status')} after "
                            f"{waited:.0f}s", tracker=tracker)
        retry.sleep(poll)  # the module attribute: tests patch it
        waited += poll
        job = fetch(job["id"])
    return job


def origin_note(origin: OriginRef | None) -> str | None:
    """The private note that links a mirror ticket back to the record it mirrors."""
    if origin is None:
        return None
    where = f" ({origin.url})" if origin.url else ""
    title = f": {origin.title}" if origin.title else ""
    return f"{TIERSYNC_COMMENT_MARK} mirror of {origin.tracker} {origin.remote_id}{where}{title}"


def comment_id(audit: dict[str, Any]) -> str | None:
    """The id of the comment an update added: its Comment audit event has the same id."""
    for event in audit.get("events") or []:
        if isinstance(event, dict) and event.get("type") == "Comment" and event.get("id"):
            return str(event["id"])
    return None


class BoundedCache(OrderedDict):
    """Users/organizations by id, refreshed by every sideload; the oldest entries drop out."""

    def __init__(self, limit: int = 5000):
        super().__init__()
        self.limit = limit

    def update_from(self, items: Iterable[dict[str, Any]]) -> None:
        for item in items:
            if item.get("id") is None:
                continue
            self.pop(item["id"], None)
            self[item["id"]] = item
        while len(self) > self.limit:
            self.popitem(last=False)

    def missing(self, ids: Iterable[int | None]) -> set[int]:
        return {i for i in ids if i and i not in self}


def _time_or_none(value: str) -> datetime | None:
    """A stamp, or None for one that is not a time (its ticket is quarantined as unreadable)."""
    try:
        return parse_time(value)
    except ValueError:
        return None
