"""Create metadata (``GET /issue/createmeta/{project}/issuetypes/{id}``): the fields on a
project's create screen with their schema and allowed values (``FieldCreateMetadata``)."""
from __future__ import annotations

from typing import Any

from simulators.jira_site import SETTABLE_SYSTEM, SYSTEM_FIELDS, Project, Site


def create_fields(site: Site, project: Project, base: str) -> list[dict[str, Any]]:
    system = {fid: (name, kind, items) for fid, name, kind, items in SYSTEM_FIELDS}
    out = [_meta("project", "Project", {"type": "project", "system": "project"}, True, ["set"],
                 [site.project_json(project, base)]),
           _meta("issuetype", "Issue Type", {"type": "issuetype", "system": "issuetype"}, True, [],
                 [site.issuetype_json(project, t["name"], base) for t in project.issue_types])]
    for fid in SETTABLE_SYSTEM:
        name, kind, items = system[fid]
        schema: dict[str, Any] = {"type": kind, "system": fid}
        if items:
            schema["items"] = items
        allowed = None
        if fid == "priority":
            allowed = [site.priority_json(p, base) for p in site.priorities]
        elif fid == "components":
            allowed = [site.component_json(project, c, base) for c in project.components]
        ops = ["add", "set", "remove"] if kind == "array" else ["set"]
        out.append(_meta(fid, name, schema, fid == "summary", ops, allowed))
    for cf in site.custom.values():
        if not site.on_screen(project, cf.id):
            continue
        allowed = [site.option_json(cf, o, base) for o in cf.options] if cf.options else None
        ops = ["add", "set", "remove"] if cf.schema()["type"] == "array" else ["set"]
        out.append(_meta(cf.id, cf.name, cf.schema(), False, ops, allowed))
    return out


def _meta(fid: str, name: str, schema: dict[str, Any], required: bool, operations: list[str],
          allowed: list[dict[str, Any]] | None) -> dict[str, Any]:
    meta = {"fieldId": fid, "key": fid, "name": name, "required": required, "schema": schema,
            "operations": operations, "hasDefaultValue": fid == "priority"}
    if allowed is not None:
        meta["allowedValues"] = allowed
    return meta
