"""``tiersync check --online`` for Azure DevOps: credentials, project, work item type, the fields
a mapping names and the values it writes (states, state categories, picklists, area paths)."""
from __future__ import annotations

from typing import Any

from connectors.azure_devops_view import STATE_CATEGORY
from core.errors import AuthError, ConnectorError, NotFound

# The state categories Azure DevOps processes define.
CATEGORIES = {"Proposed", "InProgress", "Resolved", "Completed", "Removed"}


def check_online(conn: Any, field_paths: list[str], values: dict[str, list[Any]]) -> list[str]:
    project, wit = conn.config.project, conn.config.work_item_type
    try:
        fields = conn._retry(lambda: conn.client.get_work_item_type_fields_with_references(
            project, wit, expand="allowedValues"), "read fields")
        states = conn.categories(wit)
    except AuthError as exc:
        return [f"credentials: {exc}"]
    except NotFound as exc:
        return [f"project {project!r} / work item type {wit!r}: not found: {exc}"]
    except ConnectorError as exc:
        return [f"cannot check Azure DevOps at {conn.config.base_url}: {exc}"]
    known = {f.reference_name.lower(): f for f in fields}
    problems = [f"{path}: no such field on work item type {wit!r} in project {project!r}"
                for path in _paths(field_paths, conn.config.marker_field)
                if path != STATE_CATEGORY and path.lower() not in known]
    for path, wanted in values.items():
        allowed = _allowed(conn, path, known, states)
        if allowed is None:
            continue
        lowered = {str(a).lower() for a in allowed}
        for value in wanted:
            if value is not None and str(value).lower() not in lowered:
                problems.append(f"{path}: value {value!r} does not exist in Azure DevOps "
                                f"(allowed: {', '.join(sorted(map(str, allowed)))})")
    return problems


def _paths(field_paths: list[str], marker_field: str | None) -> list[str]:
    return list(dict.fromkeys(field_paths + ([marker_field] if marker_field else [])))


def _allowed(conn: Any, path: str, known: dict[str, Any], states: dict[str, str]) -> set[str] | None:
    if path == "System.State":
        return set(states)
    if path == STATE_CATEGORY:
        return CATEGORIES
    if path == "System.AreaPath":
        return area_paths(conn)
    field = known.get(path.lower())
    if field is not None and field.allowed_values:
        return {str(v) for v in field.allowed_values}
    return None


def area_paths(conn: Any) -> set[str]:
    """Area paths as work items spell them ('Support\\Marketplace Experience')."""
    root = conn._retry(lambda: conn.client.get_classification_node(
        conn.config.project, "areas", depth=20), "read area paths")
    found: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        parts = [p for p in (node.path or "").split("\\") if p]
        if len(parts) >= 2 and parts[1].lower() == "area":
            parts.pop(1)  # classification node paths read '\Project\Area\Child'
        found.add("\\".join(parts) or conn.config.project)
        stack.extend(node.children or [])
    return found
