"""The simulated Jira's issues: creation, edits with Jira-like validation, workflow transitions,
comments, issue properties and remote links, and the issue JSON (REST v2 ``IssueBean``)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from simulators.jira_site import SETTABLE_SYSTEM, CustomField, Project, Site

_JIRA_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}$")
NOT_SETTABLE = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."


class FieldErrors(Exception):
    """A 400 in Jira's ErrorCollection shape."""

    def __init__(self, errors: dict[str, str] | None = None, messages: list[str] | None = None):
        self.errors = errors or {}
        self.messages = messages or []
        super().__init__(str(self.errors or self.messages))


@dataclass
class SimIssue:
    id: int
    key: str
    project: Project
    issuetype: str
    status: str
    created: datetime
    updated: datetime
    values: dict[str, Any] = field(default_factory=dict)  # field id -> stored plain value
    comments: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    remote_links: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)  # simulators/jira_attachments.py


class JiraStore:
    def __init__(self, site: Site):
        self.site = site
        self.issues: dict[str, SimIssue] = {}
        self.old_keys: dict[str, SimIssue] = {}  # keys an issue had before it was moved
        self._ids = {"issue": 10000, "comment": 10000, "link": 10000}
        self._numbers: dict[str, int] = {}
        self._last = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def tick(self, at: datetime | None = None) -> datetime:
        """Now (or ``at``) at millisecond precision, strictly after every earlier change."""
        now = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if at is None and now <= self._last:
            now = self._last + timedelta(milliseconds=1)
        self._last = max(self._last, now)
        return now

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def find(self, ref: str) -> SimIssue | None:
        """An issue by id, key, or a key it had before a move (Jira still resolves those)."""
        if ref in self.issues:
            return self.issues[ref]
        if ref in self.old_keys:
            return self.old_keys[ref]
        return next((i for i in self.issues.values() if str(i.id) == ref), None)

    def rekey(self, issue: SimIssue, project: Project, issuetype: str) -> None:
        """Give a moved issue the next key of ``project`` (see ``jira_index.move_issue``)."""
        del self.issues[issue.key]
        self.old_keys[issue.key] = issue
        self._numbers[project.key] = self._numbers.get(project.key, 0) + 1
        issue.key, issue.project, issue.issuetype = f"{project.key}-{self._numbers[project.key]}", project, issuetype
        issue.values["components"] = [c for c in issue.values.get("components") or []
                                      if c in project.components]
        self.issues[issue.key] = issue
        issue.updated = self.tick()

    # -- writes ---------------------------------------------------------------------------------
    def create(self, body: dict[str, Any], reporter: str | None, *, status: str | None = None,
               at: datetime | None = None) -> SimIssue:
        fields = dict(body.get("fields") or {})
        project = self.site.project(str(_ref(fields.pop("project", None))))
        if project is None:
            raise FieldErrors({"project": "Specify a valid project ID or key"})
        issuetype = _ref(fields.pop("issuetype", None))
        names = {t["name"]: t for t in project.issue_types}
        chosen = next((t["name"] for t in project.issue_types if issuetype in (t["id"], t["name"])), None)
        if chosen is None:
            raise FieldErrors({"issuetype": f"Specify a valid issue type (known: {', '.join(names)})"})
        if not fields.get("summary"):
            raise FieldErrors({"summary": "You must specify a summary of the issue."})
        values = {"priority": self.site.priority({"name": self.site.default_priority}),
                  "labels": [], "components": [], "assignee": None, "reporter": reporter,
                  "resolution": None, "resolutiondate": None}
        values.update(self.convert(project, fields))
        self._numbers[project.key] = self._numbers.get(project.key, 0) + 1
        when = self.tick(at)
        issue = SimIssue(self.next_id("issue"), f"{project.key}-{self._numbers[project.key]}",
                         project, chosen, status or self.site.workflow["initial"], when, when, values)
        for prop in body.get("properties") or []:
            issue.properties[prop["key"]] = prop["value"]
        self.issues[issue.key] = issue
        return issue

    def edit(self, issue: SimIssue, fields: dict[str, Any], *, touch: bool = False) -> bool:
        new = self.convert(issue.project, fields)
        changed = any(issue.values.get(k) != v for k, v in new.items())
        issue.values.update(new)
        if changed or touch:
            issue.updated = self.tick()
        return changed

    def transition(self, issue: SimIssue, transition_id: str) -> None:
        allowed = {t["id"]: t for t in self.site.transitions_from(issue.status)}
        if transition_id not in allowed:
            raise FieldErrors(messages=[f"Transition id '{transition_id}' is not valid for this issue."])
        issue.status = allowed[transition_id]["to"]
        issue.updated = self.tick()

    def add_comment(self, issue: SimIssue, body: Any, author: str | None,
                    properties: list[dict[str, Any]] | None = None,
                    at: datetime | None = None) -> dict[str, Any]:
        if not isinstance(body, str) or not body.strip():
            raise FieldErrors({"comment": "Comment body can not be empty!"})
        props = {p["key"]: p.get("value") for p in properties or []}
        # sd.public.comment = {"internal": true} makes a comment internal in a Jira Service
        # Management project; in a software project the property is stored but does nothing
        # (developer.atlassian.com/cloud/jira/service-desk/rest, "Comment visibility")
        internal = issue.project.service_desk and bool((props.get("sd.public.comment") or {}).get("internal"))
        when = self.tick(at)
        comment = {"id": self.next_id("comment"), "body": body, "author": author, "created": when,
                   "updated": when, "internal": internal, "properties": props}
        issue.comments.append(comment)
        issue.updated = max(issue.updated, when) if at else self.tick()
        return comment

    def upsert_link(self, issue: SimIssue, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        obj = body.get("object") or {}
        errors = {k: f"'{k}' is required." for k in ("url", "title") if not obj.get(k)}
        if errors:
            raise FieldErrors(errors)
        global_id = body.get("globalId")
        existing = next((l for l in issue.remote_links if global_id and l["globalId"] == global_id), None)
        link = existing or {"id": self.next_id("link")}
        link.update({"globalId": global_id, "application": body.get("application") or {},
                     "relationship": body.get("relationship") or "links to", "object": obj})
        if existing is None:  # remote links do not change the issue's 'updated' (as in Jira)
            issue.remote_links.append(link)
        return link, existing is None

    # -- field conversion (API value -> stored plain value) -------------------------------------
    def convert(self, project: Project, fields: dict[str, Any]) -> dict[str, Any]:
        out, errors = {}, {}
        for fid, value in fields.items():
            if not self.site.on_screen(project, fid):
                errors[fid] = NOT_SETTABLE.format(fid)
                continue
            try:
                out[fid] = self._convert_one(project, fid, value)
            except ValueError as exc:
                errors[fid] = str(exc)
        if errors:
            raise FieldErrors(errors)
        return out

    def _convert_one(self, project: Project, fid: str, value: Any) -> Any:
        if fid in SETTABLE_SYSTEM:
            return self._system(project, fid, value)
        cf = self.site.custom[fid]
        if value is None:
            return None
        if cf.type in ("select", "radiobuttons"):
            return self._option(cf, value)
        if cf.type in ("multiselect", "multicheckboxes"):
            return [self._option(cf, v) for v in _list(value, fid)]
        if cf.type == "datetime":
            if not isinstance(value, str) or not _JIRA_DATETIME.match(value):
                raise ValueError("Invalid date format. Please enter the date in the format "
                                 "\"yyyy-MM-dd'T'HH:mm:ss.SSSZ\".")
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(timezone.utc)
        if cf.type == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"'{value}' is an invalid number")
            return value
        if cf.type == "userpicker":
            return self._user(value)
        if cf.type == "labels":
            return [str(v) for v in _list(value, fid)]
        if not isinstance(value, str):
            raise ValueError("Operation value must be a string")
        if cf.type == "textfield" and len(value) > 255:
            raise ValueError("The entered text is too long. It exceeds the allowed limit of 255 characters.")
        return value

    def _system(self, project: Project, fid: str, value: Any) -> Any:
        if fid in ("summary", "description"):
            if value is not None and not isinstance(value, str):
                raise ValueError("Operation value must be a string")
            if fid == "summary" and not value:
                raise ValueError("You must specify a summary of the issue.")
            return value
        if fid == "priority":
            found = self.site.priority(value) if isinstance(value, dict) else None
            if value is not None and found is None:
                raise ValueError(f"Specify a valid priority (got {value!r})")
            return found
        if fid == "labels":
            labels = [str(v) for v in _list(value, fid)]
            bad = [l for l in labels if " " in l]
            if bad:
                raise ValueError(f"The label '{bad[0]}' contains spaces which is invalid.")
            return labels
        if fid == "components":
            names = []
            for ref in _list(value, fid):
                ids = {c: self.site.component_json(project, c, "")["id"] for c in project.components}
                name = next((c for c, cid in ids.items() if _ref(ref) in (c, cid)), None)
                if name is None:
                    raise ValueError(f"Component name '{_ref(ref)}' is not valid")
                names.append(name)
            return names
        user = None if value is None else self._user(value)  # assignee, reporter
        if fid == "assignee" and user is not None and \
                (self.site.user(account_id=user) or {}).get("active") is False:
            # Jira refuses a deactivated account as assignee ("User '...' cannot be assigned
            # issues."; Jira Cloud REST "Assign issue": 400 when the user is not assignable)
            raise ValueError(f"User '{user}' cannot be assigned issues.")
        return user

    def _option(self, cf: CustomField, value: Any) -> str:
        ref = _ref(value) if isinstance(value, dict) else None
        for option in cf.options:
            if ref in (option, cf.option_id(option)) and isinstance(value, dict):
                return option
        raise ValueError(f"Option value '{ref if ref is not None else value}' is not valid")

    def _user(self, value: Any) -> str:
        account = value.get("accountId") if isinstance(value, dict) else None
        if not account or self.site.user(account_id=account) is None:
            raise ValueError("Specified user does not exist or you do not have required permissions")
        return account


def _ref(value: Any) -> Any:
    """``{"key"|"id"|"name"|"value": x}`` or a plain x -> x."""
    if isinstance(value, dict):
        for name in ("key", "id", "name", "value"):
            if name in value:
                return str(value[name])
        return None
    return value


def _list(value: Any, fid: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"Field '{fid}' expects an array")
    return value
