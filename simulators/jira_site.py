"""The simulated Jira site's configuration: users, statuses, workflow, priorities, fields and
projects, loaded from a fixture, and the JSON renderers for them (Jira REST v2 shapes, checked
against the v3 OpenAPI component schemas in tests/test_simulator_jira.py)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

CUSTOM = "com.atlassian.jira.plugin.system.customfieldtypes:"
# fixture type -> (schema type, items)
CUSTOM_TYPES = {
    "textfield": ("string", None), "textarea": ("string", None), "select": ("option", None),
    "radiobuttons": ("option", None), "multiselect": ("array", "option"),
    "multicheckboxes": ("array", "option"), "datetime": ("datetime", None),
    "datepicker": ("date", None), "float": ("number", None), "userpicker": ("user", None),
    "labels": ("array", "string"),
}
CATEGORIES = {"new": (2, "To Do", "blue-gray"), "indeterminate": (4, "In Progress", "yellow"),
              "done": (3, "Done", "green"), "undefined": (1, "No Category", "medium-gray")}
# id, name, schema type, items, navigable/orderable/searchable, clause names
SYSTEM_FIELDS = [
    ("summary", "Summary", "string", None), ("description", "Description", "string", None),
    ("status", "Status", "status", None), ("priority", "Priority", "priority", None),
    ("labels", "Labels", "array", "string"), ("components", "Components", "array", "component"),
    ("assignee", "Assignee", "user", None), ("reporter", "Reporter", "user", None),
    ("project", "Project", "project", None), ("issuetype", "Issue Type", "issuetype", None),
    ("created", "Created", "datetime", None), ("updated", "Updated", "datetime", None),
    ("comment", "Comment", "comments-page", None), ("resolution", "Resolution", "resolution", None),
    ("resolutiondate", "Resolved", "datetime", None),
]
SETTABLE_SYSTEM = ("summary", "description", "priority", "labels", "components", "assignee",
                   "reporter")


@dataclass
class CustomField:
    id: str
    name: str
    type: str
    options: list[str] = field(default_factory=list)

    @property
    def number(self) -> int:
        return int(self.id.split("_")[1])

    def option_id(self, value: str) -> str:
        return str(self.number * 100 + self.options.index(value) + 1)

    def schema(self) -> dict[str, Any]:
        kind, items = CUSTOM_TYPES[self.type]
        schema: dict[str, Any] = {"type": kind, "custom": CUSTOM + self.type, "customId": self.number}
        if items:
            schema["items"] = items
        return schema


@dataclass
class Project:
    id: str
    key: str
    name: str
    issue_types: list[dict[str, str]]
    components: list[str]
    service_desk: bool = False
    create_screen: list[str] | None = None  # field ids on the create/edit screen; None: all


class Site:
    def __init__(self, fixture: dict[str, Any]):
        site = fixture.get("site", {})
        self.title = site.get("title", "tiersync Jira simulator")
        self.time_zone = site.get("time_zone", "UTC")
        self.tz = ZoneInfo(self.time_zone)
        self.embedded_comment_limit = int(site.get("embedded_comment_limit", 20))
        self.index_lag_seconds = float(site.get("index_lag_seconds", 0.0))
        self.resolutions = [dict(r) for r in fixture.get("resolutions", [])]
        self.users = [dict(u) for u in fixture.get("users", [])]
        self.statuses = {s["name"]: dict(s) for s in fixture["statuses"]}
        self.workflow = fixture["workflow"]
        self.priorities = [dict(p) for p in fixture["priorities"]]
        self.default_priority = fixture.get("default_priority", self.priorities[0]["name"])
        self.custom = {f["id"]: CustomField(f["id"], f["name"], f["type"], list(f.get("options", [])))
                       for f in fixture.get("fields", [])}
        self.projects = {p["key"]: Project(p["id"], p["key"], p["name"], p["issue_types"],
                                           list(p.get("components", [])), p.get("service_desk", False),
                                           p.get("create_screen")) for p in fixture["projects"]}

    # -- lookups --------------------------------------------------------------------------------
    def user(self, account_id: str | None = None, email: str | None = None) -> dict[str, Any] | None:
        for user in self.users:
            if (account_id and user["accountId"] == account_id) or \
                    (email and user.get("emailAddress", "").lower() == email.lower()):
                return user
        return None

    def user_for_login(self, email: str) -> dict[str, Any]:
        found = self.user(email=email)
        if found is None:
            digest = hashlib.sha1(email.lower().encode()).hexdigest()[:24]
            found = {"accountId": f"712020:{digest}", "emailAddress": email,
                     "displayName": email.split("@")[0]}
            self.users.append(found)
        return found

    def project(self, ref: str) -> Project | None:
        for project in self.projects.values():
            if ref in (project.key, project.id) or ref.lower() == project.name.lower():
                return project
        return None

    def priority(self, ref: dict[str, Any]) -> dict[str, Any] | None:
        return next((p for p in self.priorities
                     if str(ref.get("id")) == p["id"] or ref.get("name") == p["name"]), None)

    def on_screen(self, project: Project, field_id: str) -> bool:
        if field_id in SETTABLE_SYSTEM:
            return True
        return field_id in self.custom and (project.create_screen is None
                                            or field_id in project.create_screen)

    def transitions_from(self, status: str) -> list[dict[str, Any]]:
        out = []
        for t in self.workflow["transitions"]:
            sources = t.get("from", "*")
            if t["to"] != status and (sources == "*" or status in sources):
                out.append(t)
        return out

    # -- renderers ------------------------------------------------------------------------------
    def time(self, when: datetime) -> str:
        local = when.astimezone(self.tz)
        millis = f"{local.microsecond // 1000:03d}"
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + millis + local.strftime("%z")

    def user_json(self, user: dict[str, Any] | None, base: str) -> dict[str, Any] | None:
        if user is None:
            return None
        out = {"self": f"{base}/rest/api/2/user?accountId={user['accountId']}",
               "accountId": user["accountId"], "displayName": user.get("displayName", ""),
               "active": user.get("active", True) is not False, "timeZone": self.time_zone, "accountType": "atlassian"}
        if user.get("emailAddress") and not user.get("hide_email"):
            out["emailAddress"] = user["emailAddress"]
        return out

    def status_json(self, name: str, base: str) -> dict[str, Any]:
        status = self.statuses[name]
        cat_id, cat_name, colour = CATEGORIES[status["category"]]
        return {"self": f"{base}/rest/api/2/status/{status['id']}", "description": "",
                "iconUrl": f"{base}/images/icons/statuses/generic.png", "name": name,
                "id": status["id"], "statusCategory": {
                    "self": f"{base}/rest/api/2/statuscategory/{cat_id}", "id": cat_id,
                    "key": status["category"], "colorName": colour, "name": cat_name}}

    def priority_json(self, priority: dict[str, Any], base: str) -> dict[str, Any]:
        return {"self": f"{base}/rest/api/2/priority/{priority['id']}", "id": priority["id"],
                "name": priority["name"], "iconUrl": f"{base}/images/icons/priorities/p.svg",
                "statusColor": "#cccccc", "description": priority["name"]}

    def issuetype_json(self, project: Project, name: str, base: str) -> dict[str, Any]:
        it = next(t for t in project.issue_types if t["name"] == name)
        return {"self": f"{base}/rest/api/2/issuetype/{it['id']}", "id": it["id"], "name": name,
                "description": "", "iconUrl": f"{base}/images/icons/issuetypes/task.svg",
                "subtask": False, "hierarchyLevel": 0}

    def component_json(self, project: Project, name: str, base: str) -> dict[str, Any]:
        cid = str(int(project.id) * 10 + project.components.index(name) + 1)
        return {"self": f"{base}/rest/api/2/component/{cid}", "id": cid, "name": name}

    def project_json(self, project: Project, base: str, full: bool = False) -> dict[str, Any]:
        out = {"self": f"{base}/rest/api/2/project/{project.id}", "id": project.id,
               "key": project.key, "name": project.name, "simplified": False,
               "projectTypeKey": "service_desk" if project.service_desk else "software"}
        if full:
            out["issueTypes"] = [self.issuetype_json(project, t["name"], base) for t in project.issue_types]
            out["components"] = [self.component_json(project, c, base) for c in project.components]
        return out

    def option_json(self, cf: CustomField, value: str, base: str) -> dict[str, Any]:
        oid = cf.option_id(value)
        return {"self": f"{base}/rest/api/2/customFieldOption/{oid}", "value": value, "id": oid}

    def field_details(self) -> list[dict[str, Any]]:
        out = []
        for fid, name, kind, items in SYSTEM_FIELDS:
            schema: dict[str, Any] = {"type": kind, "system": fid}
            if items:
                schema["items"] = items
            out.append({"id": fid, "key": fid, "name": name, "custom": False, "orderable": True,
                        "navigable": True, "searchable": True, "clauseNames": [fid],
                        "schema": schema})
        for cf in self.custom.values():
            out.append({"id": cf.id, "key": cf.id, "name": cf.name, "custom": True,
                        "orderable": True, "navigable": True, "searchable": True,
                        "clauseNames": [f"cf[{cf.number}]", cf.name], "schema": cf.schema()})
        return out
