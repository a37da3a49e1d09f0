"""Reading one page of Jira search results record by record (issue 9).

Rules: an issue whose identity (key, ``fields.updated``) or shape is unreadable, or whose
building raises anything, becomes an unreadable record naming the field (for instance
Atlassian's own ``search/jql`` example: ``fields.updated`` a number, ``fields.comment`` a list);
the other issues of the page are built and the cursor goes on past them all.
"""
from __future__ import annotations

from typing import Any

from connectors.records import MISSING, UnreadableRecord, build_each

NULLABLE = (type(None), MISSING)
# what a search result must look like before it is built (connectors/records.py)
ISSUE_SHAPE: dict[str, tuple[Any, ...]] = {
    "key": (str,), "fields": (dict,), "fields.updated": (str,),
    "fields.comment": (dict, *NULLABLE), "fields.comment.comments": (list, MISSING),
    "fields.status": (dict, *NULLABLE), "fields.labels": (list, *NULLABLE),
    "fields.summary": (str, *NULLABLE), "properties": (dict, *NULLABLE)}


def read_page(connector: Any, issues: list[Any], state: Any) -> tuple[list[Any], list[UnreadableRecord]]:
    """(records new to ``state``, unreadable issues) of one page of search results."""
    wanted, seen = [], []
    for raw in issues:
        identity = identity_of(connector, raw)
        if identity is None or state.is_new(*identity):
            wanted.append(raw)
            seen.append(identity)
    records, unreadable = build_each(connector.name, wanted, connector.record, ident=_ident,
                                     shape=ISSUE_SHAPE)
    for identity in seen:
        if identity is not None:
            state.accept(*identity)
    return records, unreadable


def identity_of(connector: Any, raw: Any) -> tuple[str, int] | None:
    """(issue id, updated in ms): the cursor is keyed by the immutable id."""
    try:
        issue_id, _key, updated_ms = connector._identity(raw)
        return issue_id, updated_ms
    except Exception:  # noqa: BLE001 - reported with its reason when the issue is built
        return None


def _ident(raw: Any) -> tuple[Any, Any]:
    fields = raw.get("fields") if isinstance(raw, dict) else None
    version = fields.get("updated") if isinstance(fields, dict) else None
    return raw.get("key") or raw.get("id"), version
