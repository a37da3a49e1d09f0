"""Translation between Azure DevOps work items and the flat native view.

Read: field reference names as keys; identities as their uniqueName (email); ``System.Tags`` as a
list without tiersync's marker tags; HTML fields (``System.Description``) as plain text; plus the
virtual ``System.State.category`` from the work item type's states. Write: the same keys as JSON
Patch operations; read-only and virtual paths are dropped, ``None`` removes a field.
"""
from __future__ import annotations

import html
import logging
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any, Iterable

from azure.devops.v7_1.work_item_tracking import JsonPatchOperation

from core.connector import RemoteComment

log = logging.getLogger("tiersync.azure_devops")

MARKER_PREFIX = "tiersync:"
STATE_CATEGORY = "System.State.category"
# Paths the service computes; a write carrying them is dropped, not sent.
READ_ONLY = frozenset({
    "System.Id", "System.Rev", "System.TeamProject", "System.WorkItemType", "System.CreatedDate",
    "System.CreatedBy", "System.ChangedDate", "System.ChangedBy", "System.CommentCount",
    "System.History", "System.AuthorizedDate", "System.RevisedDate", "System.Watermark",
    STATE_CATEGORY,
})
IDENTITY_FIELDS = frozenset({"System.AssignedTo", "System.CreatedBy", "System.ChangedBy",
                             "System.AuthorizedAs", "Microsoft.VSTS.Common.ActivatedBy",
                             "Microsoft.VSTS.Common.ResolvedBy", "Microsoft.VSTS.Common.ClosedBy"})
_NAME_EMAIL = re.compile(r"^.*<\s*([^<>\s]+@[^<>\s]+)\s*>\s*$")
_BLOCK_TAGS = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote"}


# -- text <-> HTML ----------------------------------------------------------------------------
def text_to_html(text: str) -> str:
    """Plain text as the HTML Azure DevOps stores in Description and Discussion."""
    return html.escape(text, quote=False).replace("\n", "<br>")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.pending_break = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "br":
            self.parts.append("\n")
            self.pending_break = False

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.pending_break = True

    def handle_data(self, data: str) -> None:
        if self.pending_break and self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")
        self.pending_break = False
        self.parts.append(data)


def html_to_text(markup: str | None) -> str:
    """The text of an HTML fragment; ``text_to_html`` output comes back unchanged."""
    if not markup:
        return ""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


# -- read -------------------------------------------------------------------------------------
def parse_date(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value.astimezone(timezone.utc) if value.tzinfo else value
    else:
        moment = datetime.fromisoformat(str(value).replace(" ", "T"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def split_tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(t).strip() for t in value if str(t).strip()]
    return [t.strip() for t in str(value).split(";") if t.strip()]


def marker_tag(key: str) -> str:
    return f"{MARKER_PREFIX}{key}"


def marker_of(fields: dict[str, Any], marker_field: str | None) -> str | None:
    """The idempotency key stored on a work item (its marker tag or marker field)."""
    if marker_field:
        value = fields.get(marker_field)
        return str(value) if value not in (None, "") else None
    for tag in split_tags(fields.get("System.Tags")):
        if tag.lower().startswith(MARKER_PREFIX):
            return tag[len(MARKER_PREFIX):]
    return None


def _identity(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("uniqueName") or value.get("displayName")
    if isinstance(value, str):
        match = _NAME_EMAIL.match(value)
        return match.group(1) if match else value
    return value


def identity_name(value: Any) -> str | None:
    """An identity field's uniqueName (email), from an IdentityRef or ``Name <email>`` text."""
    name = _identity(value)
    return str(name) if name else None


def flatten(fields: dict[str, Any], categories: dict[str, str],
            html_fields: Iterable[str]) -> dict[str, Any]:
    """The flat native view of a work item's ``fields``."""
    html_set = set(html_fields)
    out: dict[str, Any] = {}
    for ref, value in fields.items():
        if ref == "System.History":
            continue  # comments carry the discussion
        if isinstance(value, dict) or ref in IDENTITY_FIELDS:
            value = _identity(value)
        elif ref == "System.Tags":
            value = [t for t in split_tags(value) if not t.lower().startswith(MARKER_PREFIX)]
        elif ref in html_set and isinstance(value, str):
            value = html_to_text(value)
        out[ref] = value
    state = out.get("System.State")
    out[STATE_CATEGORY] = categories.get(state) if state is not None else None
    return out


def comment(item: Any) -> RemoteComment:
    """A RemoteComment from an SDK ``Comment`` (no public/internal distinction: all internal)."""
    author = getattr(item.created_by, "unique_name", None) if item.created_by else None
    return RemoteComment(id=str(item.id), body=html_to_text(item.text), public=False,
                         created_at=parse_date(item.created_date), author=author)


# -- write ------------------------------------------------------------------------------------
def patch_ops(fields: dict[str, Any], html_fields: Iterable[str], *,
              keep_tags: Iterable[str] = ()) -> list[JsonPatchOperation]:
    """JSON Patch operations writing ``fields``; ``keep_tags`` are added to any System.Tags write."""
    html_set = set(html_fields)
    ops: list[JsonPatchOperation] = []
    for ref, value in fields.items():
        if ref in READ_ONLY:
            log.debug("not writing read-only Azure DevOps field %s", ref)
            continue
        if ref == "System.Tags":
            value = "; ".join(dict.fromkeys(split_tags(value) + list(keep_tags))) or None
        elif ref in html_set and isinstance(value, str):
            value = text_to_html(value)
        if value is None:
            ops.append(JsonPatchOperation(op="remove", path=f"/fields/{ref}"))
        else:
            ops.append(JsonPatchOperation(op="add", path=f"/fields/{ref}", value=value))
    return ops


def rev_test(version: str | int) -> JsonPatchOperation:
    return JsonPatchOperation(op="test", path="/rev", value=int(version))


def history_op(body: str) -> JsonPatchOperation:
    return JsonPatchOperation(op="add", path="/fields/System.History", value=text_to_html(body))


def hyperlink_op(url: str, comment_text: str) -> JsonPatchOperation:
    return JsonPatchOperation(op="add", path="/relations/-",
                              value={"rel": "Hyperlink", "url": url,
                                     "attributes": {"comment": comment_text}})
