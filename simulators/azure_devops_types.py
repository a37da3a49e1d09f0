"""Definitions the Azure DevOps simulator serves: projects, work item types, states, fields, the
service's error shape and its date format."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


class SimError(Exception):
    """An error answered in Azure DevOps' WrappedException shape."""

    def __init__(self, status: int, message: str, type_key: str,
                 custom_properties: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type_key = type_key
        self.custom_properties = custom_properties

    def body(self) -> dict[str, Any]:
        body = {"$id": "1", "innerException": None, "message": self.message,
                "typeName": f"Microsoft.TeamFoundation.WorkItemTracking.Server.{self.type_key}, "
                            "Microsoft.TeamFoundation.WorkItemTracking.Server",
                "typeKey": self.type_key, "errorCode": 0, "eventId": 3200}
        if self.custom_properties:
            body["customProperties"] = self.custom_properties
        return body


def format_date(value: datetime) -> str:
    """ADO's date format: UTC, milliseconds with trailing zeros trimmed ('...:51.57Z')."""
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    millis = f"{value.microsecond // 1000:03d}".rstrip("0")
    return f"{text}.{millis}Z" if millis else f"{text}Z"


def parse_date(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass
class FieldDef:
    ref: str
    name: str
    type: str = "string"  # string, html, boolean, integer, double, dateTime, identity, treePath, history
    allowed: list[str] = field(default_factory=list)
    default: Any = None
    required: bool = False

    def to_api(self, base_url: str, expand: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"alwaysRequired": self.required, "defaultValue": self.default,
                               "referenceName": self.ref, "name": self.name,
                               "url": f"{base_url}/_apis/wit/fields/{self.ref}"}
        if expand:
            out["allowedValues"] = list(self.allowed)
            out["dependentFields"] = []
        return out


SYSTEM_FIELDS: list[FieldDef] = [
    FieldDef("System.Id", "ID", "integer"),
    FieldDef("System.Rev", "Rev", "integer"),
    FieldDef("System.Title", "Title", "string", required=True),
    FieldDef("System.State", "State", "string", required=True),
    FieldDef("System.Reason", "Reason", "string"),
    FieldDef("System.AreaPath", "Area Path", "treePath"),
    FieldDef("System.IterationPath", "Iteration Path", "treePath"),
    FieldDef("System.TeamProject", "Team Project", "string"),
    FieldDef("System.WorkItemType", "Work Item Type", "string"),
    FieldDef("System.AssignedTo", "Assigned To", "identity"),
    FieldDef("System.CreatedDate", "Created Date", "dateTime"),
    FieldDef("System.CreatedBy", "Created By", "identity"),
    FieldDef("System.ChangedDate", "Changed Date", "dateTime"),
    FieldDef("System.ChangedBy", "Changed By", "identity"),
    FieldDef("System.Description", "Description", "html"),
    FieldDef("System.History", "History", "history"),
    FieldDef("System.Tags", "Tags", "string"),
    FieldDef("System.CommentCount", "Comment Count", "integer"),
]


@dataclass
class WorkItemTypeDef:
    name: str
    states: list[dict[str, Any]]  # [{name, color, category}] in workflow order
    fields: dict[str, FieldDef]  # the type's own fields (System.* come from SYSTEM_FIELDS)
    description: str = ""

    def fields_all(self) -> dict[str, FieldDef]:
        out = {f.ref: f for f in SYSTEM_FIELDS}
        out["System.State"] = FieldDef("System.State", "State", "string", self.state_names(),
                                       required=True)
        out.update(self.fields)
        return out

    def state_names(self) -> list[str]:
        return [state["name"] for state in self.states]

    @classmethod
    def from_fixture(cls, name: str, data: dict[str, Any]) -> "WorkItemTypeDef":
        states = [{"name": s["name"], "color": s.get("color", "b2b2b2"), "category": s["category"]}
                  for s in data["states"]]
        fields = {f["referenceName"]: FieldDef(f["referenceName"], f.get("name", f["referenceName"]),
                                               f.get("type", "string"), list(f.get("allowedValues", [])),
                                               f.get("defaultValue"), bool(f.get("alwaysRequired")))
                  for f in data.get("fields", [])}
        return cls(name, states, fields, data.get("description", ""))


@dataclass
class ProjectDef:
    name: str
    id: str
    areas: list[str]  # full area paths, e.g. "Support\\Marketplace Experience"
    types: dict[str, WorkItemTypeDef]  # lower-case name -> type

    def work_item_type(self, name: str) -> WorkItemTypeDef:
        found = self.types.get(str(name).lower())
        if found is None:
            raise SimError(404, f"Work item type {name} does not exist.",
                           "WorkItemTypeNotFoundException")
        return found

    @classmethod
    def from_fixture(cls, data: dict[str, Any]) -> "ProjectDef":
        name = data["name"]
        areas = [name] + [a for a in data.get("areas", []) if a != name]
        types = {t.lower(): WorkItemTypeDef.from_fixture(t, spec)
                 for t, spec in data["work_item_types"].items()}
        return cls(name, data.get("id", "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c"), areas, types)

    def area_tree(self) -> dict[str, Any]:
        """The Areas classification node tree, shaped like the service's."""
        root: dict[str, Any] = {"name": self.name, "children": {}}
        for area in self.areas[1:]:
            node = root
            for part in area.split("\\")[1:]:
                node = node["children"].setdefault(part, {"name": part, "children": {}})
        counter = iter(range(1, 10_000))

        def render(node: dict[str, Any], path: str) -> dict[str, Any]:
            out = {"id": next(counter), "identifier": str(uuid.uuid5(uuid.NAMESPACE_URL, path)), "name": node["name"],
                   "structureType": "area", "hasChildren": bool(node["children"]),
                   "path": path}
            if node["children"]:
                out["children"] = [render(child, f"{path}\\{child['name']}")
                                   for child in node["children"].values()]
            return out

        return render(root, f"\\{self.name}\\Area")
