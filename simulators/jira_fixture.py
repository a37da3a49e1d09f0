"""Seeding the simulated Jira from a fixture, changes "made by a person", and the snapshot.

Fixture issues and human edits use the connector's flat view (``summary``, ``priority`` by name,
``components`` by name, ``assignee`` by email, ``customfield_10101: "Sev 2"``, date-times in ISO
8601, ``status`` by name), so tests and demo scenarios read like the mapping files.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from simulators.jira_site import Project, Site
from simulators.jira_state import JiraStore, SimIssue


def api_fields(site: Site, flat: dict[str, Any]) -> dict[str, Any]:
    """Flat view (without ``status``) -> the ``fields`` object of a REST create/edit."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        if path in ("summary", "description", "labels"):
            out[path] = value
        elif path == "priority":
            out[path] = {"name": value} if value else None
        elif path == "components":
            out[path] = [{"name": n} for n in value or []]
        elif path in ("assignee", "reporter"):
            out[path] = {"accountId": _account(site, value)} if value else None
        elif path.startswith("customfield_") and path in site.custom:
            out[path] = _custom(site, path, value)
        else:
            raise ValueError(f"flat field {path!r} is not known to the simulator")
    return out


def _account(site: Site, ref: str) -> str:
    user = site.user(email=ref) or site.user(account_id=ref)
    if user is None:
        raise ValueError(f"unknown user {ref!r}")
    return user["accountId"]


def _custom(site: Site, path: str, value: Any) -> Any:
    cf = site.custom[path]
    if value is None:
        return None
    if cf.type in ("select", "radiobuttons"):
        return {"value": value}
    if cf.type in ("multiselect", "multicheckboxes"):
        return [{"value": v} for v in value]
    if cf.type == "datetime":
        when = _time(value).astimezone(timezone.utc)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"
    if cf.type == "userpicker":
        return {"accountId": _account(site, value)}
    return value


def _time(value: str | datetime) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def seed_issue(store: JiraStore, spec: dict[str, Any]) -> SimIssue:
    """One fixture issue: project, issuetype, status, fields (flat), comments, properties..."""
    site = store.site
    fields = dict(spec.get("fields") or {})
    reporter = spec.get("reporter")
    body = {"fields": {"project": {"key": spec.get("project", next(iter(site.projects)))},
                       "issuetype": {"name": spec.get("issuetype", "Escalation")},
                       **api_fields(site, fields)},
            "properties": [{"key": k, "value": v} for k, v in (spec.get("properties") or {}).items()]}
    if spec.get("key"):
        project_key, number = spec["key"].rsplit("-", 1)
        store._numbers[project_key] = max(store._numbers.get(project_key, 0), int(number) - 1)
    created = _time(spec["created"]) if spec.get("created") else None
    issue = store.create(body, _account(site, reporter) if reporter else None,
                         status=spec.get("status"), at=created)
    if spec.get("status"):
        set_resolution(site, issue, spec.get("resolution"))
        issue.values["resolutiondate"] = issue.values["resolution"] and issue.updated
    for comment in spec.get("comments") or []:
        props = [{"key": "sd.public.comment", "value": {"internal": True}}] if comment.get("internal") else []
        author = _account(site, comment["author"]) if comment.get("author") else None
        at = _time(comment["created"]) if comment.get("created") else None
        store.add_comment(issue, comment["body"], author, props, at=at)
    for link in spec.get("remote_links") or []:
        store.upsert_link(issue, link)
    if spec.get("updated"):
        issue.updated = store.tick(_time(spec["updated"]))
    return issue


def human_edit(store: JiraStore, issue: SimIssue, flat: dict[str, Any]) -> None:
    """Save an issue as a person would in the UI: fields, and ``status`` set directly (with the
    resolution a person picks on the screen: ``resolution`` by name, default the first one, for
    a done status; none for any other)."""
    flat = dict(flat)
    status, resolution = flat.pop("status", None), flat.pop("resolution", None)
    if status is not None:
        if status not in store.site.statuses:
            raise ValueError(f"unknown status {status!r}")
        issue.status = status
        set_resolution(store.site, issue, resolution)
    store.edit(issue, api_fields(store.site, flat), touch=True)
    if issue.values.get("resolution") and not issue.values.get("resolutiondate"):
        issue.values["resolutiondate"] = issue.updated


def set_resolution(site: Site, issue: SimIssue, name: str | None) -> None:
    """The resolution that goes with the issue's status (see ``human_edit``)."""
    if site.statuses[issue.status]["category"] != "done" or not site.resolutions:
        issue.values["resolution"], issue.values["resolutiondate"] = None, None
        return
    chosen = next((r for r in site.resolutions if r["name"] == name), None) if name else site.resolutions[0]
    if chosen is None:
        raise ValueError(f"unknown resolution {name!r}")
    if issue.values.get("resolution") != chosen:
        issue.values["resolution"], issue.values["resolutiondate"] = chosen, None


def flat_of(site: Site, issue: SimIssue) -> dict[str, Any]:
    """The issue's values in flat form (as in the fixture)."""
    out: dict[str, Any] = {}
    for fid, value in issue.values.items():
        if fid in ("priority", "resolution"):
            value = value["name"] if value else None
        elif fid in ("assignee", "reporter") or getattr(site.custom.get(fid), "type", "") == "userpicker":
            user = site.user(account_id=value) if value else None
            value = (user.get("emailAddress") or user["accountId"]) if user else None
        elif isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        out[fid] = value
    return out


def snapshot(store: JiraStore) -> dict[str, Any]:
    site = store.site
    issues = []
    for issue in sorted(store.issues.values(), key=lambda i: i.id):
        flat = flat_of(site, issue)
        issues.append({
            "key": issue.key, "id": issue.id, "project": issue.project.key,
            "issuetype": issue.issuetype, "status": issue.status,
            "status_category": site.statuses[issue.status]["category"],
            "summary": flat.get("summary"), "created": _iso(issue.created),
            "updated": _iso(issue.updated), "fields": flat,
            "comments": [{"id": str(c["id"]), "author": _email(site, c["author"]), "body": c["body"],
                          "internal": c["internal"], "public": _public(issue.project, c),
                          "created": _iso(c["created"])} for c in issue.comments],
            "properties": dict(issue.properties),
            "links": [{"globalId": l.get("globalId"), "url": l["object"].get("url"),
                       "title": l["object"].get("title"), "relationship": l["relationship"]}
                      for l in issue.remote_links]})
    return {"issues": issues, "time_zone": site.time_zone,
            "users": [{"accountId": u["accountId"], "email": u.get("emailAddress"),
                       "name": u.get("displayName")} for u in site.users],
            "now": _iso(datetime.now(timezone.utc))}


def _public(project: Project, comment: dict[str, Any]) -> bool:
    return project.service_desk and not comment["internal"]


def _email(site: Site, account_id: str | None) -> str | None:
    user = site.user(account_id=account_id) if account_id else None
    return (user.get("emailAddress") or user["accountId"]) if user else None


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
