"""The flat native view of a Zendesk ticket, both ways, and the online check of mapping paths.

Reading: ticket attributes keep their names (``subject``, ``status``, ``tags``, ...), people and
organisations come from the sideloaded users/organizations (``requester.email``,
``assignee.email``, ``organization.name``, and each organisation field as
``organization.fields.<key>``, e.g. the account's CSM), ``via.channel`` from the ticket's ``via`` and every
custom field as ``custom_fields.<id>`` with the value as Zendesk stores it (a drop-down's option
tag, a checkbox's bool, a text field's string).

Writing: the same keys become a Zendesk ticket payload. Paths Zendesk computes or that the API
cannot set (``via.channel``, ``organization.name``, ...) are left out and reported as ignored.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from core.connector import TIERSYNC_COMMENT_MARK
from core.errors import PermanentError

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TYPES = ("problem", "incident", "question", "task")

# Ticket attributes copied into the flat view as they are. ``updated_at`` is the version, not
# data: a comment alone then leaves the view unchanged, which lets the engine adopt the version.
READ_ATTRIBUTES = ("subject", "description", "status", "priority", "type", "tags", "external_id",
                   "due_at", "group_id", "assignee_id", "requester_id", "submitter_id",
                   "organization_id", "brand_id", "ticket_form_id", "problem_id", "is_public",
                   "recipient", "created_at")
WRITABLE_ATTRIBUTES = frozenset({"subject", "status", "priority", "type", "tags", "external_id",
                                 "due_at", "group_id", "assignee_id", "requester_id",
                                 "organization_id", "brand_id", "ticket_form_id", "problem_id"})
PEOPLE_PATHS = ("requester.email", "requester.name", "assignee.email", "assignee.name",
                "submitter.email", "organization.name", "via.channel")
# Readable but not writable through the Update Ticket API (Zendesk computes them).
READ_ONLY_PATHS = frozenset(PEOPLE_PATHS + ("description", "created_at", "updated_at",
                                            "submitter_id", "is_public", "recipient")) - {
    "assignee.email"}
ENUM_VALUES = {"status": STATUSES, "priority": PRIORITIES, "type": TYPES}

CUSTOM_FIELD = re.compile(r"^custom_fields\.(\d+)$")
PATH_PATTERN = re.compile(
    r"^(custom_fields\.\d+|(requester|assignee|submitter)\.(email|name)|organization\.name"
    r"|organization\.fields\.[A-Za-z0-9_]+|via\.channel|[a-z_]+)$")
ORG_FIELD = re.compile(r"^organization\.fields\.[A-Za-z0-9_]+$")


# -- reading -------------------------------------------------------------------------------------
def flatten(ticket: Mapping[str, Any], users: Mapping[int, Mapping[str, Any]],
            organizations: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The flat view of one ticket as Zendesk returned it, people from the sideloads."""
    data: dict[str, Any] = {name: ticket.get(name) for name in READ_ATTRIBUTES}
    data["tags"] = list(ticket.get("tags") or [])
    if str(data.get("description") or "").lstrip().startswith(TIERSYNC_COMMENT_MARK):
        data.pop("description")  # tiersync's own placeholder, not a description from a person
    requester = users.get(ticket.get("requester_id")) or {}
    assignee = users.get(ticket.get("assignee_id")) or {}
    submitter = users.get(ticket.get("submitter_id")) or {}
    organization = organizations.get(ticket.get("organization_id")) or {}
    data["requester.email"] = requester.get("email")
    data["requester.name"] = requester.get("name")
    data["assignee.email"] = assignee.get("email")
    data["assignee.name"] = assignee.get("name")
    data["submitter.email"] = submitter.get("email")
    data["organization.name"] = organization.get("name")
    for key, value in (organization.get("organization_fields") or {}).items():
        data[f"organization.fields.{key}"] = value
    data["via.channel"] = (ticket.get("via") or {}).get("channel")
    for custom in ticket.get("custom_fields") or []:
        data[f"custom_fields.{custom['id']}"] = custom.get("value")
    return data


def people_ids(ticket: Mapping[str, Any]) -> set[int]:
    return {ticket[k] for k in ("requester_id", "assignee_id", "submitter_id") if ticket.get(k)}


# -- writing -------------------------------------------------------------------------------------
def write_payload(fields: Mapping[str, Any], *, creating: bool,
                  tracker: str = "zendesk") -> tuple[dict[str, Any], list[str]]:
    """Zendesk ticket attributes for ``fields`` and the paths left out as read-only."""
    payload: dict[str, Any] = {}
    custom: list[dict[str, Any]] = []
    ignored: list[str] = []
    for path, value in fields.items():
        match = CUSTOM_FIELD.match(path)
        if match:
            custom.append({"id": int(match[1]), "value": value})
        elif path in WRITABLE_ATTRIBUTES:
            payload[path] = _attribute_value(path, value, tracker)
        elif path == "assignee.email":
            payload["assignee_email"] = value
        elif creating and path in ("requester.email", "requester.name"):
            payload.setdefault("requester", {})[path.split(".")[1]] = value
        elif path in READ_ONLY_PATHS or ORG_FIELD.match(path):
            ignored.append(path)
        else:
            raise PermanentError(f"cannot write field path {path!r}: not a Zendesk ticket "
                                 f"attribute or custom_fields.<id>", tracker=tracker)
    if custom:
        payload["custom_fields"] = custom
    return payload, ignored


def _attribute_value(path: str, value: Any, tracker: str) -> Any:
    if path == "tags":
        if value is None:
            return []
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return [str(tag) for tag in value]
    allowed = ENUM_VALUES.get(path)
    if allowed and value is not None and value not in allowed:
        raise PermanentError(f"{path}: {value!r} is not one of {', '.join(allowed)}",
                             tracker=tracker)
    return value


# -- online check --------------------------------------------------------------------------------
def check_paths(field_paths: list[str], values: Mapping[str, list[Any]],
                ticket_fields: list[Mapping[str, Any]]) -> list[str]:
    """Problems with the mapping's paths and values against the account's ticket fields."""
    by_id = {int(f["id"]): f for f in ticket_fields if f.get("id") is not None}
    problems: list[str] = []
    for path in field_paths:
        match = CUSTOM_FIELD.match(path)
        if match:
            problems += _check_custom(path, by_id.get(int(match[1])), values.get(path) or [])
        elif path in ENUM_VALUES:
            problems += [f"{path}: {v!r} is not a Zendesk {path} (one of "
                         f"{', '.join(ENUM_VALUES[path])})"
                         for v in values.get(path) or [] if v is not None
                         and v not in ENUM_VALUES[path]]
        elif not (path in READ_ATTRIBUTES or path in PEOPLE_PATHS or ORG_FIELD.match(path)):
            problems.append(f"{path}: not a Zendesk ticket attribute (expected one of "
                            f"{', '.join(READ_ATTRIBUTES + PEOPLE_PATHS)} or custom_fields.<id>)")
    return problems


def _check_custom(path: str, field: Mapping[str, Any] | None, wanted: list[Any]) -> list[str]:
    if field is None:
        return [f"{path}: no ticket field with this id exists in Zendesk"]
    title = field.get("title") or field.get("id")
    if field.get("active") is False:
        return [f"{path}: ticket field {title!r} is inactive"]
    kind = field.get("type")
    problems = []
    if kind in ("tagger", "multiselect"):
        options = [o.get("value") for o in field.get("custom_field_options") or []]
        for value in wanted:
            if value is not None and str(value) not in options:
                problems.append(f"{path}: {value!r} is not an option of ticket field {title!r} "
                                f"(options: {', '.join(map(str, options))})")
    elif kind == "checkbox":
        problems += [f"{path}: ticket field {title!r} is a checkbox; {value!r} is not a bool"
                     for value in wanted if value is not None and not isinstance(value, bool)]
    return problems
