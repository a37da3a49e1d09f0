"""The comments queued for one record, sent as one comment (issue 11 item 8: one write per record
and change where the API allows it).

A change often queues several comments for one record of one tracker: the state-change note and
the copy of the comment that came with the change. Zendesk and Jira take one comment per
request, so each was one write. They are joined at send time instead: the outbox keeps one row
per comment (its de-duplication key, its "sent" note, its audit entry), and only the request is
shared.

Rules:
- A comment about to be sent takes along the record's next pending actions (same escalation and
  tracker, id order) while they are comments too: due now, of the same visibility, and while the
  joined body stays within ``MAX_CHARS``; never sent, unless the record was read after they may
  have been (a comment that may have gone out before is always read for first, and then its
  followers are checked against that read too). Anything else queued between them (an
  update, an attachment) ends the group, so the record's order holds.
- Only tiersync's own notes and copies are joined (their body starts with
  ``TIERSYNC_COMMENT_MARK``, which is what marks a part's start in a joined comment), and none that
  notifies people: a tracker adds its mentions at the end of the comment (Jira, Azure DevOps) and
  people it cannot find are noted after it (core/people_connector.py), so such a comment goes on
  its own, as before.
- The parts are joined in queue order with ``SEPARATOR``, a blank line, ``----`` and a blank
  line: a horizontal rule in Markdown (Zendesk's comment text) and in Jira's wiki markup, plain
  dashes in Azure DevOps' text. Each part keeps its own attribution ("[tiersync] Tina wrote in
  azure_devops: ...").
- Each part finishes on its own row: done with the id of the comment that carried it, and its own
  ``commented`` audit entry with its own body.
- Already landed (a lost reply, a crash between send and record, a lost or restored store): each
  part is looked for on its own (``occurrences``): a comment of the record that is that part, or
  holds it as a run of its parts between separators, counted against the parts this store
  recorded as done there (two identical parts are two). A part found is done as found there, and
  only the parts not found are sent, joined. So parts posted one by one before, or joined
  differently, are never posted again; and a part is not taken as landed from a comment that
  quotes it inside other text (only a whole comment, or a run that a separator followed by the
  tiersync mark bounds on each side, counts).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.connector import TIERSYNC_COMMENT_MARK, OutgoingComment

if TYPE_CHECKING:
    from core.store import OutboxRow

SEPARATOR = "\n\n----\n\n"
# Well below the smallest text limit of the trackers (Jira's text fields: 32,767 characters,
# developer.atlassian.com REST v3 spec, e.g. CustomFieldContextDefaultValueTextArea); a longer
# run of comments goes as several.
MAX_CHARS = 16_000
_RULE = " ".join(SEPARATOR.split())
_BOUNDARY = re.compile(" " + re.escape(_RULE) + " (?=" + re.escape(TIERSYNC_COMMENT_MARK) + ")")


def normal(text: str) -> str:
    """A comment's text whatever whitespace the tracker's rendering changed."""
    return " ".join(text.split())


def segments(text: str) -> list[str]:
    """A comment's parts: split where a separator is followed by a tiersync part's start."""
    return _BOUNDARY.split(normal(text))


def occurrences(comment: str, part: str) -> int:
    """How many times ``part`` stands in ``comment`` as a whole: the comment is the part, or a
    run of its segments is (see the rules)."""
    want = segments(part)
    if want == [""]:
        return 0
    have = segments(comment)
    size = len(want)
    return sum(1 for at in range(len(have) - size + 1) if have[at:at + size] == want)


def joinable(action: "OutboxRow") -> bool:
    """A comment that may share a comment with others (see the rules)."""
    payload = action.payload
    return action.kind == "comment" and not payload.get("notify") \
        and str(payload.get("body", "")).lstrip().startswith(TIERSYNC_COMMENT_MARK)


def followers(store: Any, tx: Any, lead: "OutboxRow", now: datetime, *,
              noted: bool = False) -> list["OutboxRow"]:
    """The record's comments that go out with ``lead``, in order (see the rules). ``noted``:
    comments that may have gone out before join too (the caller read the record after any such
    send, and checks each part against it)."""
    if not joinable(lead):
        return []
    public = bool(lead.payload.get("public"))
    size = len(lead.payload["body"])
    out: list["OutboxRow"] = []
    for action in store.pending_after(tx, lead.escalation_id, lead.connector, lead.id):
        if not joinable(action) or (action.sent is not None and not noted) \
                or action.next_attempt_at > now \
                or bool(action.payload.get("public")) != public:
            break
        size += len(SEPARATOR) + len(action.payload["body"])
        if size > MAX_CHARS:
            break
        out.append(action)
    return out


def joined(parts: list["OutboxRow"]) -> str:
    return SEPARATOR.join(part.payload["body"] for part in parts)


def outgoing(parts: list["OutboxRow"]) -> OutgoingComment:
    """The comment carrying ``parts`` (only a lone comment notifies: see the rules)."""
    first = parts[0].payload
    notify = tuple(first.get("notify") or ()) if len(parts) == 1 else ()
    return OutgoingComment(body=joined(parts), public=bool(first.get("public")), notify=notify)


def finish(applier: Any, tx: Any, parts: list["OutboxRow"], remote_id: str,
           comment_id: str | None) -> None:
    """Each part done with the comment that carried it, and its own audit entry."""
    now = applier.engine.clock()
    for part in parts:
        payload = part.payload
        extra = {"notify": list(payload["notify"])} if payload.get("notify") else {}
        applier.store.finish_action(tx, part.id, "done", now,
                                    result={"comment_id": comment_id, "remote_id": remote_id})
        applier._audit_tx(tx, part, "commented", f"comment {comment_id}", remote_id=remote_id,
                          after={"public": bool(payload.get("public")), "body": payload["body"],
                                 **extra})
