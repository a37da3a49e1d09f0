"""Jira issue JSON <-> the flat native view the Jira mapping uses.

Read: ``summary``, ``description`` (v2 plain text), ``created`` (ISO 8601 UTC), ``status`` (name),
``status.category`` (statusCategory key: new / indeterminate / done), ``resolution`` (name, or
None), ``priority`` (name), ``labels`` (list),
``components`` (list of names), ``assignee`` (email address, or the accountId when the user's
privacy settings hide the email), ``project`` (key), ``issuetype`` (name) and every
``customfield_NNNNN``: a select option as its value string, a multi-select as a list of value
strings, a user as email/accountId, a date-time as ISO 8601 UTC (``2026-01-05T09:00:00Z``),
anything else as Jira returns it.

Write: the same keys and value forms; ``status`` is applied through a workflow transition by the
connector, ``status.category`` is read-only, ``project``/``issuetype`` only apply on create.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from core.connector import RemoteComment
from connectors.jira_cursor import format_jira_time, iso_utc, parse_jira_time
from core.errors import PermanentError

SYSTEM_PATHS = ("summary", "description", "status", "status.category", "resolution", "priority",
                "labels", "components", "assignee", "project", "issuetype", "created")
# resolution is set by a transition screen (the mapping's transition_fields), never by an edit
READ_ONLY = ("status.category", "resolution", "created")
CREATE_ONLY = ("project", "issuetype")


@dataclass(frozen=True)
class FieldCatalog:
    """Field id -> schema, from ``GET /rest/api/2/field``."""

    schemas: dict[str, dict[str, Any]]

    @classmethod
    def from_fields(cls, fields: list[dict[str, Any]]) -> "FieldCatalog":
        return cls({f["id"]: dict(f.get("schema") or {}) for f in fields if "id" in f})

    def kind(self, field_id: str) -> str:
        """option | options | datetime | date | number | user | users | string | other."""
        schema = self.schemas.get(field_id, {})
        kind, items = schema.get("type"), schema.get("items")
        if kind == "array":
            return {"option": "options", "user": "users", "string": "strings"}.get(items, "other")
        return kind if kind in ("option", "datetime", "date", "number", "user", "string") else "other"

    def __contains__(self, field_id: str) -> bool:
        return field_id in self.schemas


def user_ref(user: dict[str, Any] | None) -> str | None:
    """A Jira user as the flat view shows it: email address, else accountId."""
    if not user:
        return None
    return user.get("emailAddress") or user.get("accountId") or user.get("displayName")


def flat_view(fields: dict[str, Any], catalog: FieldCatalog,
              hidden_labels: Callable[[str], bool] = lambda _label: False) -> dict[str, Any]:
    status = fields.get("status") or {}
    data: dict[str, Any] = {
        "summary": fields.get("summary"),
        "description": fields.get("description"),
        "status": status.get("name"),
        "status.category": (status.get("statusCategory") or {}).get("key"),
        "resolution": (fields.get("resolution") or {}).get("name"),
        "priority": (fields.get("priority") or {}).get("name"),
        "labels": [label for label in fields.get("labels") or [] if not hidden_labels(label)],
        "components": [c.get("name") for c in fields.get("components") or []],
        "assignee": user_ref(fields.get("assignee")),
        "project": (fields.get("project") or {}).get("key"),
        "issuetype": (fields.get("issuetype") or {}).get("name"),
        "created": iso_utc(parse_jira_time(fields["created"])) if fields.get("created") else None,
    }
    for field_id, value in fields.items():
        if field_id.startswith("customfield_"):
            data[field_id] = _custom_value(value, catalog.kind(field_id))
    return data


def _custom_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, str):
        return iso_utc(parse_jira_time(value))
    if isinstance(value, list):
        return [_custom_value(v, kind) for v in value]
    if isinstance(value, dict):
        if "value" in value:
            return value["value"]
        if "accountId" in value:
            return user_ref(value)
        if "name" in value:
            return value["name"]
    return value


def comments_of(raw_comments: list[dict[str, Any]], *, service_management: bool) -> tuple[RemoteComment, ...]:
    """Comments as RemoteComment; outside Jira Service Management every comment is internal."""
    out = []
    for c in raw_comments:
        public = bool(c.get("jsdPublic", True)) if service_management else False
        out.append(RemoteComment(id=str(c["id"]), body=c.get("body") or "", public=public,
                                 created_at=parse_jira_time(c["created"]),
                                 author=user_ref(c.get("author"))))
    return tuple(out)


# -- writing --------------------------------------------------------------------------------
UserResolver = Callable[[str], str]


def api_fields(flat: dict[str, Any], catalog: FieldCatalog, resolve_user: UserResolver) -> dict[str, Any]:
    """The ``fields`` object of a create/edit request for the settable flat keys."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        if path in ("status",) + READ_ONLY + CREATE_ONLY:
            continue
        if path in ("summary", "description"):
            out[path] = value
        elif path == "priority":
            out[path] = None if value in (None, "") else {"name": str(value)}
        elif path == "labels":
            out[path] = _names(value)
        elif path == "components":
            out[path] = [{"name": name} for name in _names(value)]
        elif path == "assignee":
            out[path] = None if value in (None, "") else {"accountId": resolve_user(str(value))}
        elif path.startswith("customfield_") and path in catalog:
            out[path] = _custom_api_value(path, value, catalog.kind(path), resolve_user)
        else:
            raise PermanentError(f"field path {path!r} is not a Jira field this connector can "
                                 f"write (system fields: {', '.join(SYSTEM_PATHS)}; custom fields "
                                 f"must exist in GET /rest/api/2/field)")
    return out


def _names(value: Any) -> list[str]:
    """A list of names from a list or a comma-separated string (the mapping's comma_list)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def _custom_api_value(path: str, value: Any, kind: str, resolve_user: UserResolver) -> Any:
    if value is None:
        return [] if kind in ("options", "users", "strings") else None
    if kind == "option":
        return {"value": str(value)}
    if kind == "options":
        return [{"value": v} for v in _names(value)]
    if kind == "user":
        return {"accountId": resolve_user(str(value))}
    if kind == "users":
        return [{"accountId": resolve_user(v)} for v in _names(value)]
    if kind == "datetime":
        return format_jira_time(_as_datetime(path, value))
    if kind == "number" and isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            raise PermanentError(f"{path}: {value!r} is not a number") from None
    return value


def _as_datetime(path: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PermanentError(f"{path}: date-time {value!r} has no time zone")
        return value
    try:
        return parse_jira_time(str(value))
    except ValueError:
        raise PermanentError(f"{path}: {value!r} is not an ISO 8601 date-time") from None
