"""JSON renderers for simulated issues, comments and remote links (Jira REST v2 shapes)."""
from __future__ import annotations

from typing import Any, Callable

from simulators.jira_site import Site
from simulators.jira_state import SimIssue
from simulators.jira_workflow import resolution_json

ISSUE_FIELDS = ("summary", "description", "status", "priority", "labels", "components", "assignee",
                "reporter", "project", "issuetype", "created", "updated", "comment", "resolution",
                "resolutiondate", "attachment")


def field_selection(params: list[str], default: str) -> Callable[[str], bool]:
    """Jira's ``fields`` parameter: ``*all``, ``*navigable``, ids, ``-id`` exclusions, commas."""
    items = [p.strip() for raw in (params or [default]) for p in str(raw).split(",") if p.strip()]
    everything = any(i in ("*all", "*navigable") for i in items)
    wanted = {i for i in items if not i.startswith(("-", "*"))}
    excluded = {i[1:] for i in items if i.startswith("-")}
    if excluded and not wanted:
        everything = True
    return lambda fid: fid not in excluded and (everything or fid in wanted)


def issue_json(site: Site, issue: SimIssue, base: str, selected: Callable[[str], bool],
               properties: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,"
                                     "versionedRepresentations", "id": str(issue.id),
                           "self": f"{base}/rest/api/2/issue/{issue.id}", "key": issue.key}
    fields = {fid: _system_value(site, issue, fid, base) for fid in ISSUE_FIELDS if selected(fid)}
    for cf in site.custom.values():
        if selected(cf.id):
            fields[cf.id] = _custom_value(site, issue, cf.id, base)
    out["fields"] = fields
    wanted_props = {p.strip() for raw in properties for p in str(raw).split(",") if p.strip()}
    if wanted_props:
        out["properties"] = {k: v for k, v in issue.properties.items() if k in wanted_props}
    return out


def _system_value(site: Site, issue: SimIssue, fid: str, base: str) -> Any:
    values, project = issue.values, issue.project
    if fid in ("summary", "description", "labels"):
        return values.get(fid)
    if fid == "status":
        return site.status_json(issue.status, base)
    if fid == "priority":
        return site.priority_json(values["priority"], base) if values.get("priority") else None
    if fid == "components":
        return [site.component_json(project, c, base) for c in values.get("components") or []]
    if fid in ("assignee", "reporter"):
        return site.user_json(site.user(account_id=values.get(fid)), base) if values.get(fid) else None
    if fid == "project":
        return site.project_json(project, base)
    if fid == "issuetype":
        return site.issuetype_json(project, issue.issuetype, base)
    if fid in ("created", "updated"):
        return site.time(getattr(issue, fid))
    if fid == "comment":
        shown = issue.comments[: site.embedded_comment_limit]
        return {"self": f"{base}/rest/api/2/issue/{issue.id}/comment",
                "comments": [comment_json(site, issue, c, base) for c in shown],
                "maxResults": len(shown), "total": len(issue.comments), "startAt": 0}
    if fid == "attachment":
        return [attachment_json(site, a, base) for a in issue.attachments]
    if fid == "resolutiondate":
        return site.time(values["resolutiondate"]) if values.get("resolutiondate") else None
    if fid == "resolution":  # set by a transition screen (simulators/jira_workflow.py)
        return resolution_json(values["resolution"], base) if values.get("resolution") else None
    return None


def _custom_value(site: Site, issue: SimIssue, fid: str, base: str) -> Any:
    cf, value = site.custom[fid], issue.values.get(fid)
    if value is None:
        return None
    if cf.type in ("select", "radiobuttons"):
        return site.option_json(cf, value, base)
    if cf.type in ("multiselect", "multicheckboxes"):
        return [site.option_json(cf, v, base) for v in value]
    if cf.type == "datetime":
        return site.time(value)
    if cf.type == "userpicker":
        return site.user_json(site.user(account_id=value), base)
    return value


def comment_json(site: Site, issue: SimIssue, comment: dict[str, Any], base: str,
                 with_properties: bool = False) -> dict[str, Any]:
    author = site.user_json(site.user(account_id=comment["author"]), base) if comment["author"] else None
    out = {"self": f"{base}/rest/api/2/issue/{issue.id}/comment/{comment['id']}",
           "id": str(comment["id"]), "author": author, "body": comment["body"],
           "updateAuthor": author, "created": site.time(comment["created"]),
           "updated": site.time(comment["updated"]),
           # outside a service project every comment is "public" as far as JSM is concerned
           "jsdPublic": not (issue.project.service_desk and comment["internal"])}
    if with_properties:
        out["properties"] = [{"key": k, "value": v} for k, v in comment["properties"].items()]
    return out


def link_json(issue: SimIssue, link: dict[str, Any], base: str) -> dict[str, Any]:
    out = {"id": link["id"], "self": f"{base}/rest/api/2/issue/{issue.key}/remotelink/{link['id']}",
           "relationship": link["relationship"], "object": link["object"]}
    if link.get("globalId"):
        out["globalId"] = link["globalId"]
    if link.get("application"):
        out["application"] = link["application"]
    return out


def attachment_json(site: Site, item: dict[str, Any], base: str) -> dict[str, Any]:
    """An issue attachment as Jira REST v2 returns it ("Get attachment metadata")."""
    return {"self": f"{base}/rest/api/2/attachment/{item['id']}", "id": str(item["id"]),
            "filename": item["filename"], "mimeType": item["mimeType"], "size": item["size"],
            "created": site.time(item["created"]),
            "author": site.user_json(site.user(account_id=item["author"]), base) if item["author"] else None,
            "content": f"{base}/rest/api/2/attachment/content/{item['id']}"}
