"""Reporting Work Item Revisions - Read Reporting Revisions Get: every revision of a project's
work items as one stream, in batches with a continuation token (a warehouse's feed).

What is reproduced, from /work/shared/specs/azure-devops/workItemTracking-7.1.json (path
``/{organization}/{project}/_apis/wit/reporting/workitemrevisions``, ``get``) and the recorded
examples in examples/workItemRevisions:

- ``startDateTime``: "all revisions will occur after this date/time" (strictly after, here);
  "Cannot be used in conjunction with 'watermark' parameter": both given answers 400.
- ``continuationToken`` "specifies the watermark to start the batch from": the token of the last
  batch (``"813;350;1"`` in the examples: watermark;id;rev) continues after it; a token that
  does not parse answers 400.
- ``fields``: only those fields; omitted, "all reportable fields". ``$expand=fields``: "Return all
  the fields in work item revisions, including long text fields which are not returned by
  default": the harsher reading here is that a long text field (HTML: ``System.History``,
  ``System.Description``) comes back only with ``$expand=fields``, even when ``fields`` names it.
- ``types``: only those work item types. ``includeIdentityRef``: identities as ``{id,
  uniqueName, displayName}``, otherwise as ``"Display Name <unique name>"`` text, as in the
  examples. ``includeLatestOnly``: only each item's latest revision. ``includeDiscussionChangesOnly``:
  only the revisions carrying a ``System.History`` entry.
- ``$maxPageSize``: "The maximum number of results to return in this batch"; the spec states no
  default or ceiling: 200 for both here (the harsher reading; the connector does not rely on
  the number), a larger value answers 400.
- The answer: ``values`` (``id``, ``rev``, ``fields``), ``continuationToken``, ``nextLink`` and
  ``isLastBatch``. The recorded values carry no ``commentVersionRef``; the spec types them only
  as ``T`` (the ``WorkItem`` contract, whose ``commentVersionRef`` is the "reference to a specific
  version of the comment added/edited/deleted in this revision"). Whether the service fills it
  in is not documented: left out unless ``comment_refs=True`` (the harsher reading by default).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from simulators.azure_devops_store import Revision, Store, WorkItemState
from simulators.azure_devops_types import SimError, format_date, parse_date

PAGE_SIZE = 200  # default and ceiling of $maxPageSize (see the module docstring)
END_OF_TIME = "9999-01-01T00:00:00Z"  # System.RevisedDate of an item's latest revision
LOCATION = {"id": "f828fe59-dd87-495d-a17c-7a8d6211ca6c", "resourceName": "workItemRevisions",
            "resourceVersion": 2, "routeTemplate": "{project}/_apis/{area}/reporting/{resource}",
            "area": "wit", "minVersion": "1.0", "maxVersion": "7.1", "releasedVersion": "7.0"}


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def _bad(message: str) -> SimError:
    return SimError(400, message, "VssPropertyValidationException")


def read_revisions(store: Store, base: str, project: str, params: dict[str, str],
                   comment_refs: bool = True) -> dict[str, Any]:
    proj = store.project(project)
    token, start = params.get("continuationToken"), params.get("startDateTime")
    if token and start:
        raise _bad("startDateTime cannot be used in conjunction with the watermark "
                   "(continuationToken).")
    size = int(params.get("$maxPageSize") or PAGE_SIZE)
    if not 1 <= size <= PAGE_SIZE:
        raise _bad(f"$maxPageSize must be between 1 and {PAGE_SIZE}; got {size}.")
    after = _watermark(token) if token else 0
    since = parse_date(start) if start else None
    types = {t.strip().lower() for t in params.get("types", "").split(",") if t.strip()}
    latest_only = _truthy(params.get("includeLatestOnly"))
    discussion_only = _truthy(params.get("includeDiscussionChangesOnly"))
    stream: list[tuple[WorkItemState, Revision, int]] = []
    for item in store.items.values():
        if item.project != proj.name:
            continue
        for index, revision in enumerate(item.revisions):
            if revision.watermark <= after or (since is not None and revision.changed <= since):
                continue
            if types and str(revision.fields.get("System.WorkItemType", "")).lower() not in types:
                continue
            if latest_only and index != len(item.revisions) - 1:
                continue
            if discussion_only and not revision.fields.get("System.History"):
                continue
            stream.append((item, revision, index))
    stream.sort(key=lambda entry: entry[1].watermark)
    page = stream[:size]
    values = [_render(base, proj, item, revision, index, params, comment_refs)
              for item, revision, index in page]
    last = page[-1][1].watermark if page else after or _before(store, since)
    next_token = (f"{last};{page[-1][0].id};{page[-1][1].rev}" if page else f"{last};0;0")
    query = {"continuationToken": next_token, "api-version": "7.1-preview.2"}
    return {"values": values, "continuationToken": next_token,
            "nextLink": f"{base}/{proj.name}/_apis/wit/reporting/workItemRevisions?{urlencode(query)}",
            "isLastBatch": len(stream) <= size}


def _watermark(token: str) -> int:
    try:
        return int(token.split(";")[0])
    except ValueError:
        raise _bad(f"The continuation token {token!r} is not valid.") from None


def _before(store: Store, since: Any) -> int:
    """The watermark just before the first revision after ``since`` (an empty batch's token)."""
    if since is None:
        return 0
    marks = [r.watermark for item in store.items.values() for r in item.revisions if r.changed <= since]
    return max(marks, default=0)


def _render(base: str, proj: Any, item: WorkItemState, revision: Revision, index: int,
            params: dict[str, str], comment_refs: bool) -> dict[str, Any]:
    wit = proj.work_item_type(revision.fields["System.WorkItemType"])
    defs = wit.fields_all()
    expand = (params.get("$expand") or "none").lower() == "fields"
    wanted = {f.strip().lower() for f in params.get("fields", "").split(",") if f.strip()}
    identity_ref = _truthy(params.get("includeIdentityRef"))
    revised = (format_date(item.revisions[index + 1].changed) if index + 1 < len(item.revisions)
               else END_OF_TIME)
    fields: dict[str, Any] = {}
    for ref, value in {**revision.fields, "System.RevisedDate": revised}.items():
        if value is None or (wanted and ref.lower() not in wanted):
            continue
        kind = defs[ref].type if ref in defs else "string"
        if kind in ("html", "history") and not expand:
            continue  # long text: only with $expand=fields
        if isinstance(value, dict) and "uniqueName" in value:
            value = ({k: value[k] for k in ("id", "displayName", "uniqueName") if k in value}
                     if identity_ref else f"{value['displayName']} <{value['uniqueName']}>")
        fields[ref] = value
    out: dict[str, Any] = {"id": item.id, "rev": revision.rev, "fields": fields}
    comment = next((c for c in item.comments if c["rev"] == revision.rev), None)
    if comment is not None and comment_refs:
        out["commentVersionRef"] = {"commentId": comment["id"], "version": 1,
                                    "url": f"{base}/_apis/wit/workItems/{item.id}/comments/"
                                           f"{comment['id']}/versions/1"}
    return out
