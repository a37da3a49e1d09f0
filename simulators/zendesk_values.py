"""Values and errors of the Zendesk simulator: Zendesk's error bodies, timestamps and how a
custom field stores a value (and which tags it adds to the ticket)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, error: str, description: str | None = None,
                 details: dict[str, Any] | None = None):
        self.status = status
        self.body: dict[str, Any] = {"error": error}
        if description:
            self.body["description"] = description
        if details:
            self.body["details"] = details
        super().__init__(f"{status} {error}: {description or ''}")

    def summary(self) -> str:
        """The most specific message: the first validation detail, else the description."""
        for problems in (self.body.get("details") or {}).values():
            for problem in problems:
                return str(problem.get("description"))
        return str(self.body.get("description") or self.body["error"])


def invalid(field_name: str, message: str) -> ApiError:
    return ApiError(422, "RecordInvalid", "Record validation errors",
                    {field_name: [{"description": message, "error": "InvalidValue"}]})


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(moment: datetime) -> str:
    """A ticket version: ISO 8601 UTC with milliseconds."""
    utc = moment.astimezone(timezone.utc)
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}.{utc.microsecond // 1000:03d}Z"


def parse_iso(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def field_value(field_def: dict[str, Any], value: Any) -> Any:
    """A custom field value as Zendesk stores it, or 422."""
    kind, title = field_def.get("type"), field_def.get("title")
    if value in (None, ""):
        return None if kind != "checkbox" else False
    if kind == "tagger":
        options = [o["value"] for o in field_def.get("custom_field_options") or []]
        if value not in options:
            raise invalid(str(field_def["id"]), f"{title}: {value!r} is not a valid option")
        return value
    if kind == "multiselect":
        options = {o["value"] for o in field_def.get("custom_field_options") or []}
        chosen = value if isinstance(value, list) else [value]
        if not set(chosen) <= options:
            raise invalid(str(field_def["id"]), f"{title}: {value!r} is not a valid option")
        return list(chosen)
    if kind == "checkbox":
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
    if kind == "integer":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise invalid(str(field_def["id"]), f"{title}: {value!r} is not a number") from None
    if kind == "date" and parse_iso(f"{value}T00:00:00") is None:
        raise invalid(str(field_def["id"]), f"{title}: {value!r} is not a date (YYYY-MM-DD)")
    return str(value)


def field_tags(field_def: dict[str, Any], old: Any, new: Any, tags: list[str]) -> list[str]:
    """The ticket's tags after a drop-down or tagged checkbox changed from ``old`` to ``new``."""
    kind = field_def.get("type")
    if kind == "tagger":
        options = {o["value"] for o in field_def.get("custom_field_options") or []}
        tags = [t for t in tags if t not in options]
        return tags + ([new] if new else [])
    if kind == "checkbox" and field_def.get("tag"):
        tags = [t for t in tags if t != field_def["tag"]]
        return tags + ([field_def["tag"]] if new else [])
    return tags

