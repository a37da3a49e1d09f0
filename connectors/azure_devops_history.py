"""Comments of a whole page from the reporting revisions stream, instead of one comment list per
work item (issue 11, item 8).

Rules (docs/azure_devops.md, "Comments of a page"):

- ``GET _apis/wit/reporting/workItemRevisions`` streams every revision of the project after a
  ``startDateTime``, in batches chained by ``continuationToken``. With ``$expand=fields`` a
  revision carries ``System.History`` (the comment it added, HTML) and ``System.CommentCount``,
  and, as every ``WorkItem``, ``commentVersionRef`` (the id and version of "the comment
  added/edited/deleted in this revision").
- The stream starts at the position the feed resumed from (the cursor's ``since``). A feed
  delivers every change after that position, so the comments a page's item got since tiersync
  last read it are among the comments of its revisions after it.
- An item's comments are taken from the stream only where the stream *proves* them complete:
  its revisions after the position up to the page's one are all there, without a gap; each one
  either adds exactly one comment (``commentVersionRef`` version 1, not deleted, a non-empty
  ``System.History``, ``System.CommentCount`` one up) or touches none (no reference, no History,
  the count unchanged); and the last count is the page's. An edited or deleted comment, a count
  that moves otherwise, a History without a reference: not proven.
- The earlier comments (before the position) were delivered when they were new only if tiersync
  read the item then: proven for an item carrying tiersync's idempotency marker (a mirror tiersync
  created, read with its comments since its creation) and for an item whose count before the
  position was 0. Any other item (one made in Azure DevOps, whose older comments an escalation it
  starts now would need) and any item not proven reads its comment list, as before.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from connectors.azure_devops_view import html_to_text, identity_name, parse_date
from core.connector import RemoteComment

log = logging.getLogger("tiersync.azure_devops")

FIELDS = ["System.Id", "System.Rev", "System.WorkItemType", "System.ChangedDate",
          "System.ChangedBy", "System.CommentCount", "System.History"]
PAGE = 200  # $maxPageSize asked for (the simulator's ceiling; the service states none)
MARGIN = timedelta(minutes=1)  # read this far past the page's last change (watermark order)
MAX_REVISIONS = 20_000  # kept for one pull; past it, comment lists are read instead


@dataclass(frozen=True)
class Rev:
    """What the stream says about one revision."""

    rev: int
    count: int | None
    changed: datetime | None
    by: str | None
    history: str | None
    comment_id: int | None  # commentVersionRef
    comment_version: int | None
    comment_deleted: bool


class StreamUnusable(Exception):
    """The stream cannot be read as needed (too long, or a batch without a way on)."""


@dataclass
class RevisionStream:
    """The project's revisions after ``since``, read lazily as far as a page needs."""

    since: datetime
    read_batch: Callable[[str | None, datetime | None], dict[str, Any]]  # (token, start) -> JSON
    revisions: dict[int, dict[int, Rev]] = field(default_factory=dict)
    token: str | None = None
    last_changed: datetime | None = None
    done: bool = False  # isLastBatch seen: everything up to now is here
    kept: int = 0

    def read_through(self, moment: datetime) -> None:
        """Read batches until the stream is past ``moment`` (plus MARGIN) or at its end."""
        while not self.done and (self.last_changed is None or self.last_changed <= moment + MARGIN):
            batch = self.read_batch(self.token, None if self.token else self.since)
            values = batch.get("values") if isinstance(batch.get("values"), list) else []
            for value in values:
                self._keep(value)
            token = batch.get("continuationToken") or _token_of(batch.get("nextLink"))
            if batch.get("isLastBatch") is True:
                self.done = True
            elif not token or (token == self.token and not values):
                raise StreamUnusable("a reporting revisions batch with no way on")
            self.token = token

    def _keep(self, value: Any) -> None:
        if not isinstance(value, dict):
            return
        fields = value.get("fields") if isinstance(value.get("fields"), dict) else {}
        item_id, rev = value.get("id"), value.get("rev")
        if not isinstance(item_id, int) or not isinstance(rev, int):
            return
        ref = value.get("commentVersionRef") if isinstance(value.get("commentVersionRef"), dict) else {}
        changed = _date(fields.get("System.ChangedDate"))
        if changed is not None and (self.last_changed is None or changed > self.last_changed):
            self.last_changed = changed
        self.kept += 1
        if self.kept > MAX_REVISIONS:
            raise StreamUnusable(f"more than {MAX_REVISIONS} revisions since {self.since}")
        count = fields.get("System.CommentCount")
        self.revisions.setdefault(item_id, {})[rev] = Rev(
            rev=rev, count=count if isinstance(count, int) else None, changed=changed,
            by=identity_name(fields.get("System.ChangedBy")),
            history=fields.get("System.History") if isinstance(fields.get("System.History"), str) else None,
            comment_id=ref.get("commentId") if isinstance(ref.get("commentId"), int) else None,
            comment_version=ref.get("version") if isinstance(ref.get("version"), int) else None,
            comment_deleted=bool(ref.get("isDeleted")))


def proven_comments(revisions: dict[int, Rev], rev: int, count: Any, *, known: bool
                    ) -> tuple[RemoteComment, ...] | None:
    """The comments an item got in its stream revisions up to ``rev``, when the stream proves
    they are all it got since the position (module rules); None when it does not. ``known``:
    the item's earlier comments were delivered before (a tiersync mirror)."""
    window = sorted(r for r in revisions if r <= rev)
    if not window or window != list(range(window[0], rev + 1)) or not isinstance(count, int):
        return None
    comments: list[RemoteComment] = []
    previous: int | None = None
    for number in window:
        entry = revisions[number]
        if entry.count is None:
            return None
        if entry.comment_id is None:
            if entry.history:  # a History entry without a comment reference
                return None
            added = 0
        elif (entry.comment_version == 1 and not entry.comment_deleted and entry.history
              and entry.changed is not None):
            added = 1
            comments.append(RemoteComment(id=str(entry.comment_id), body=html_to_text(entry.history),
                                          public=False, created_at=entry.changed, author=entry.by))
        else:  # an edited or deleted comment: only its list tells
            return None
        if previous is None:
            before = entry.count - added
            if before < 0 or (window[0] == 1 and before != 0) or (before and not known):
                return None
        elif entry.count != previous + added:
            return None
        previous = entry.count
    return tuple(comments) if previous == count else None


def _date(value: Any) -> datetime | None:
    try:
        return parse_date(value) if value else None
    except (TypeError, ValueError):
        return None


def _token_of(link: str | None) -> str | None:
    if not link or "continuationToken=" not in link:
        return None
    found = parse_qs(urlsplit(link).query).get("continuationToken")
    return found[0] if found else None
