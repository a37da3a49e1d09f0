"""Comments of a whole page from the reporting revisions stream, instead of one comment list per
work item (issue 11, item 8).

Rules (docs/azure_devops.md, "Comments of a page"):

- ``GET _apis/wit/reporting/workItemRevisions`` streams every revision of the project after a
  ``startDateTime``, in batches chained by ``continuationToken``. With ``$expand=fields`` a
  revision carries ``System.History`` (the comment it added, HTML) and ``System.CommentCount``.
  Whether its values carry ``commentVersionRef`` (the ``WorkItem`` contract's id and version of
  "the comment added/edited/deleted in this revision") the documentation does not say: used
  when present; otherwise the comment id of an item's latest revision comes from the page's
  ``workitemsbatch`` read (a ``WorkItem``, with that reference), and a comment in an earlier
  revision has no id: its list is read.
- Revisions up to the one the cursor says was delivered (its ``seen`` boundary items) are
  skipped: they were delivered with their comments.
- The stream starts at the position the feed resumed from (the cursor's ``since``). A feed
  delivers every change after that position, so the comments a page's item got since tiersync
  last read it are among the comments of its revisions after it.
- An item's comments are taken from the stream only where the stream *proves* them complete:
  its revisions after the position up to the page's one are all there, without a gap; each one
  either adds exactly one comment (a comment reference of version 1, not deleted, a non-empty
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
MAX_BATCHES = 200  # stream requests for one pull, empty ones included


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
    read_batch: Callable[[str | None, datetime | None], Any]  # (token, start) -> StreamedBatch
    revisions: dict[int, dict[int, Rev]] = field(default_factory=dict)
    token: str | None = None
    last_changed: datetime | None = None
    done: bool = False  # isLastBatch seen: everything up to now is here
    kept: int = 0
    batches: int = 0

    def read_through(self, moment: datetime) -> None:
        """Read batches until the stream is past ``moment`` (plus MARGIN) or at its end."""
        while not self.done and (self.last_changed is None or self.last_changed <= moment + MARGIN):
            self.batches += 1
            if self.batches > MAX_BATCHES:
                raise StreamUnusable(f"more than {MAX_BATCHES} reporting revisions batches")
            batch = self.read_batch(self.token, None if self.token else self.since)
            values = batch.values if isinstance(batch.values, list) else []
            for value in values:
                self._keep(value)
            token = batch.continuation_token or _token_of(batch.next_link)
            if batch.is_last_batch is True:
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


@dataclass(frozen=True)
class Ref:
    """A ``commentVersionRef``: the comment a revision added, edited or deleted."""

    comment_id: int | None
    version: int | None
    deleted: bool = False


def proven_comments(revisions: dict[int, Rev], rev: int, count: Any, *, known: bool,
                    delivered: int = 0, last_ref: Ref | None = None
                    ) -> tuple[RemoteComment, ...] | None:
    """The comments an item got in its stream revisions after ``delivered`` (the rev the cursor
    says was delivered, 0: none) up to ``rev``, when the stream proves they are all it got since
    the position (module rules); None when it does not. ``known``: the item's earlier comments
    were delivered before (a tiersync mirror). ``last_ref``: the batch read's
    ``commentVersionRef`` of ``rev``, for a stream that gives none."""
    window = sorted(r for r in revisions if delivered < r <= rev)
    if (not window or window != list(range(window[0], rev + 1)) or not isinstance(count, int)
            or (delivered and window[0] != delivered + 1)):
        return None
    comments: list[RemoteComment] = []
    previous: int | None = None
    for number in window:
        entry = revisions[number]
        ref = (Ref(entry.comment_id, entry.comment_version, entry.comment_deleted)
               if entry.comment_id is not None else last_ref if number == rev else None)
        if entry.count is None:
            return None
        if ref is None or ref.comment_id is None:
            if entry.history:  # a History entry whose comment is not named
                return None
            added = 0
        elif ref.version == 1 and not ref.deleted and entry.history and entry.changed is not None:
            added = 1
            comments.append(RemoteComment(id=str(ref.comment_id), body=html_to_text(entry.history),
                                          public=False, created_at=entry.changed, author=entry.by))
        else:  # an edited or deleted comment: only its list tells
            return None
        if previous is None:
            before = entry.count - added
            if before < 0 or (number == 1 and before != 0) or (before and not known):
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
