"""``tiersync check --online`` for Jira: credentials, project, issue type, fields and values.

Sources: ``GET /myself`` (credentials), ``GET /field`` (every field path exists), the create
metadata of the configured project and issue type (fields on the create screen and their
allowed values: priorities, components, select options) and ``GET /project/{key}/statuses``
(status names); the workflow, its transition screens and the project type are checked in
``jira_check_workflow`` (sampled from existing issues: Jira lists transitions only for one).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.jira_check_workflow import project_type_problems, workflow_problems
from connectors.jira_view import CREATE_ONLY, READ_ONLY, SYSTEM_PATHS
from core.errors import AuthError, ConfigError, ConnectorError, NotFound

if TYPE_CHECKING:
    from connectors.jira import JiraConnector

CATEGORIES = ("new", "indeterminate", "done")
NOT_ON_SCREENS = ("status",) + READ_ONLY + CREATE_ONLY


def check_online(connector: "JiraConnector", field_paths: list[str],
                 values: dict[str, list[Any]]) -> list[str]:
    where = f"{connector.name} ({connector.config.base_url})"
    try:
        connector.api.myself()
    except ConfigError as exc:
        return list(exc.problems)
    except AuthError as exc:
        return [str(exc)]
    except ConnectorError as exc:
        return [f"{where}: cannot reach Jira: {exc}"]
    try:
        return _check(connector, field_paths, values)
    except ConnectorError as exc:
        return [f"{where}: check failed: {exc}"]


def _check(connector: "JiraConnector", paths: list[str], values: dict[str, list[Any]]) -> list[str]:
    cfg = connector.config
    problems = [f"{p}: not a Jira field path (system fields: {', '.join(SYSTEM_PATHS)}, or "
                f"customfield_NNNNN)" for p in paths if not connector.field_path_pattern.match(p)]
    problems += [f"{p}: no such field in Jira (GET /rest/api/2/field)" for p in paths
                 if p.startswith("customfield_") and p not in connector.catalog]
    issue_type = _issue_type(connector)
    if issue_type is None:
        return problems + [f"project {cfg.project}: no issue type {cfg.issue_type!r}, or the "
                           f"project does not exist / is not visible to this account"]
    screen = _create_fields(connector, issue_type["id"])
    target = f"{cfg.project}/{cfg.issue_type}"
    for path in paths:
        if path not in NOT_ON_SCREENS and path in _known(connector) and path not in screen:
            problems.append(f"{path}: not on the create screen of {target}: Jira refuses to set "
                            f"it when tiersync creates an issue")
    statuses = _statuses(connector, issue_type["id"])
    for path, wanted in values.items():
        problems += _check_values(path, [v for v in wanted if v not in (None, "")], screen,
                                  statuses, target)
    mapped = sorted({str(v) for v in values.get("status", [])} | set(connector.transition_fields))
    mapped = [next((s for s in statuses if s.lower() == m.lower()), m) for m in mapped]
    problems += project_type_problems(connector)
    return problems + workflow_problems(connector, issue_type, statuses, mapped)


def _known(connector: "JiraConnector") -> set[str]:
    return set(SYSTEM_PATHS) | set(connector.catalog.schemas)


def _issue_type(connector: "JiraConnector") -> dict[str, Any] | None:
    cfg = connector.config
    try:
        page = connector.api.retrying("read create metadata", lambda: connector.api.get_json(
            f"issue/createmeta/{cfg.project}/issuetypes", {"maxResults": 200}))
    except NotFound:
        return None
    types = page.get("issueTypes") or page.get("values") or []
    return next((t for t in types if str(t.get("name", "")).lower() == cfg.issue_type.lower()), None)


def _create_fields(connector: "JiraConnector", issue_type_id: str) -> dict[str, dict[str, Any]]:
    cfg, fields = connector.config, {}
    while True:
        page = connector.api.retrying("read create fields", lambda: connector.api.get_json(
            f"issue/createmeta/{cfg.project}/issuetypes/{issue_type_id}",
            {"startAt": len(fields), "maxResults": 200}))
        batch = page.get("fields") or page.get("values") or []
        fields.update({f["fieldId"]: f for f in batch})
        if not batch or len(fields) >= int(page.get("total", 0)):
            return fields


def _statuses(connector: "JiraConnector", issue_type_id: str) -> list[str]:
    cfg = connector.config
    types = connector.api.retrying("list statuses", lambda: connector.api.get_json(
        f"project/{cfg.project}/statuses"))
    for entry in types or []:
        if str(entry.get("id")) == str(issue_type_id):
            return [s["name"] for s in entry.get("statuses") or []]
    return []


def _check_values(path: str, wanted: list[Any], screen: dict[str, dict[str, Any]],
                  statuses: list[str], target: str) -> list[str]:
    if path == "status":
        known, what = statuses, f"a status of {target}"
    elif path == "status.category":
        known, what = list(CATEGORIES), "a status category"
    elif screen.get(path, {}).get("allowedValues") is not None:
        known = [_label(v) for v in screen[path]["allowedValues"]]
        what = f"an allowed value of {path} in {target}"
    else:
        return []
    lowered = {str(k).lower() for k in known}
    return [f"{path}: {value!r} is not {what} (known: {', '.join(map(str, known))})"
            for value in wanted if str(value).lower() not in lowered]


def _label(allowed: dict[str, Any]) -> str:
    return str(allowed.get("value") or allowed.get("name") or allowed.get("id"))
