"""Incremental pull: WIQL on ``[System.ChangedDate]`` windows, then ``workitemsbatch`` at the
query's ``asOf``.

Why this is safe to resume (see docs/azure_devops.md):

- The batch read uses the WIQL result's ``asOf``, so every page shows the items as the query saw
  them, in ``ChangedDate`` order; a change made after ``asOf`` has a later ``ChangedDate`` and is
  picked up by the next query.
- The cursor holds the lower bound of the next query (whole seconds, whatever precision the
  service compares with) and the ``(id, rev)`` of items delivered at or after it, so the overlap
  at the boundary is never delivered twice.
- The resuming query leaves out the revisions the cursor says were delivered at its boundary
  (``([System.Id] <> id OR [System.Rev] > rev)`` per item, up to ``EXCLUDE_MAX`` of them), so an
  idle cycle is one WIQL query and no batch read of items already delivered. (The keyset
  continuations below keep their overlap, which ``Cursor.delivered`` drops.)
- WIQL returns at most 20,000 ids. Each query asks for ``$top`` = that cap; a full result is
  processed and the next query starts at its last item's second (keyset paging). Should the
  service refuse with VS402337 instead, the window is halved until it fits, then grows again.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from azure.devops.v7_1.work_item_tracking import TeamContext, Wiql

from connectors.azure_devops_client import QueryTooLarge
from connectors.azure_devops_view import parse_date
from core.errors import PermanentError

SECOND = timedelta(seconds=1)
# boundary items left out by the query itself: ~50 characters each, far below WIQL's 32K limit
# (learn.microsoft.com/azure/devops/boards/queries/wiql-syntax: "The WIQL length must not
# exceed 32K characters"); with more, the batch read and ``Cursor.delivered`` drop them
EXCLUDE_MAX = 300
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def floor_second(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def wiql_date(moment: datetime) -> str:
    return floor_second(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def wiql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Cursor:
    since: datetime  # inclusive lower bound of the next query, whole seconds, UTC
    seen: dict[str, list[int]] = field(default_factory=dict)  # id -> [rev, changed epoch ms]
    # where the feed's first pull started: every item created since was delivered from its
    # creation on (connectors/azure_devops_history.py); None in cursors written before it
    origin: datetime | None = None

    def encode(self) -> str:
        data: dict[str, Any] = {"v": 1, "since": wiql_date(self.since), "seen": self.seen}
        if self.origin is not None:
            data["origin"] = wiql_date(self.origin)
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            data = json.loads(base64.urlsafe_b64decode(text.encode()))
            origin = parse_date(data["origin"]) if data.get("origin") else None
            return cls(parse_date(data["since"]), {str(k): list(v) for k, v in data["seen"].items()},
                       origin)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"unreadable Azure DevOps cursor ({exc}); reset the tracker's "
                                 "cursor to start again") from None

    def delivered(self, item_id: int, rev: int) -> bool:
        seen = self.seen.get(str(item_id))
        return seen is not None and rev <= seen[0]

    def add(self, item_id: int, rev: int, changed: datetime) -> None:
        boundary = floor_second(changed)
        if boundary > self.since:
            self.since = boundary
            self.seen = {k: v for k, v in self.seen.items() if v[1] >= _ms(boundary)}
        if changed >= self.since:
            self.seen[str(item_id)] = [rev, _ms(changed)]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Window:
    ids: list[int]
    as_of: datetime
    upper: datetime | None  # exclusive upper bound used, None: open-ended


class ChangeFeed:
    """Pages of changed work items for one project; ``fetch_batch`` reads ids at an ``asOf``."""

    def __init__(self, client: Any, project: str, types: list[str], *, page_size: int,
                 cap: int, fetch_batch: Callable[[list[int], datetime], list[Any]],
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.client = client
        self.project = project
        self.types = types
        self.page_size = page_size
        self.cap = cap
        self.fetch_batch = fetch_batch
        self.now = now

    def pages(self, cursor: Cursor) -> Iterator[tuple[list[Any], Cursor]]:
        """(work items, cursor after them) for every batch with something new."""
        lower, upper = cursor.since, None
        seen: dict[str, list[int]] | None = dict(cursor.seen)  # the resuming query's only
        while True:
            window, seen = self.window(lower, upper, seen), None
            last: datetime | None = None
            for start in range(0, len(window.ids), self.page_size):
                fresh = []
                for item in self.fetch_batch(window.ids[start:start + self.page_size], window.as_of):
                    if item is None:
                        continue
                    changed = _changed(item)  # None: unreadable, the connector quarantines it
                    if changed is not None:
                        last = changed if last is None else max(last, changed)
                    if not cursor.delivered(item.id, item.rev):
                        cursor.add(item.id, item.rev, changed or lower)
                        fresh.append(item)
                if fresh:
                    yield fresh, cursor
            if len(window.ids) >= self.cap:  # a full result: continue after its last item
                lower = self._next_lower(lower, last)
            elif window.upper is None or window.upper > window.as_of:
                return
            else:  # a window narrowed after VS402337: go on from its end, growing again
                lower, upper = window.upper, self._grow(window.upper, window.upper - lower)

    def _next_lower(self, lower: datetime, last: datetime | None) -> datetime:
        following = floor_second(last) if last is not None else lower
        if following <= lower:
            raise PermanentError(f"{self.cap} or more work items changed within one second at "
                                 f"{wiql_date(lower)}; cannot page through them with WIQL")
        return following

    def _grow(self, lower: datetime, span: timedelta) -> datetime | None:
        upper = lower + span * 2
        return None if upper > self.now() else upper

    def window(self, lower: datetime, upper: datetime | None,
               seen: dict[str, list[int]] | None = None) -> Window:
        """Ids changed in [lower, upper) in ChangedDate order (at most ``cap``: WIQL's ``$top``);
        on VS402337 (the service refusing more than 20,000) the window is halved."""
        while True:
            try:
                result = self.client.query_by_wiql(
                    Wiql(query=self.query(lower, upper, seen)), team_context=TeamContext(project=self.project),
                    time_precision=True, top=self.cap)
                ids = [ref.id for ref in result.work_items or []]
                return Window(ids, parse_date(result.as_of), upper)
            except QueryTooLarge:
                top = upper or max(floor_second(self.now()) + SECOND, lower + timedelta(days=1))
                half = floor_second(lower + (top - lower) / 2)
                if half <= lower:
                    raise PermanentError(f"more than {self.cap} work items changed within one "
                                         f"second at {wiql_date(lower)}; cannot page through them "
                                         "with WIQL") from None
                upper = half

    def query(self, lower: datetime, upper: datetime | None,
              seen: dict[str, list[int]] | None = None) -> str:
        clauses = ["[System.TeamProject] = @project",
                   f"[System.ChangedDate] >= {wiql_text(wiql_date(lower))}"]
        if self.types:
            clauses.insert(1, "[System.WorkItemType] IN (" +
                           ", ".join(wiql_text(t) for t in self.types) + ")")
        if upper is not None:
            clauses.append(f"[System.ChangedDate] < {wiql_text(wiql_date(upper))}")
        if seen and len(seen) <= EXCLUDE_MAX:  # delivered revisions at the boundary: not again
            clauses += [f"([System.Id] <> {int(item)} OR [System.Rev] > {int(found[0])})"
                        for item, found in sorted(seen.items(), key=lambda kv: int(kv[0]))]
        return ("SELECT [System.Id] FROM WorkItems WHERE " + " AND ".join(clauses) +
                " ORDER BY [System.ChangedDate] ASC, [System.Id] ASC")


def _changed(item: Any) -> datetime | None:
    try:
        return parse_date(item.fields["System.ChangedDate"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
