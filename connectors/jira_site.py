"""Facts about the Jira site the connector reads once and keeps: statuses, project types.

- ``GET /rest/api/2/status``: every status with its id and ``statusCategory.key``; the workflow
  walk (``jira_workflow``) looks wanted statuses up by name here.
- ``GET /rest/api/2/project/{key}``: ``projectTypeKey`` is ``service_desk`` for a Jira Service
  Management project, ``software`` / ``business`` otherwise (REST v3 "Get project").
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.jira_client import JiraApi

SERVICE_DESK = "service_desk"


class SiteFacts:
    def __init__(self, api: "JiraApi"):
        self.api = api
        self._statuses: list[dict[str, Any]] | None = None
        self._project_types: dict[str, str] = {}

    def statuses(self) -> list[dict[str, Any]]:
        if self._statuses is None:
            self._statuses = list(self.api.retrying("list statuses", lambda: self.api.get_json("status")))
        return self._statuses

    def status(self, ref: str) -> dict[str, Any] | None:
        """A status by name (any case) or id."""
        return next((s for s in self.statuses() if ref.lower() in
                     (str(s.get("name", "")).lower(), str(s.get("id", "")))), None)

    def project_type(self, key: str) -> str:
        if key not in self._project_types:
            project = self.api.retrying(f"read project {key}", lambda: self.api.get_json(f"project/{key}"))
            self._project_types[key] = str(project.get("projectTypeKey") or "software")
        return self._project_types[key]

    def remember_project(self, project: dict[str, Any] | None) -> None:
        """Note the type of a project seen in an issue's fields (no request)."""
        if project and project.get("key") and project.get("projectTypeKey"):
            self._project_types[str(project["key"])] = str(project["projectTypeKey"])

    def known_type(self, key: str) -> str | None:
        return self._project_types.get(key)
