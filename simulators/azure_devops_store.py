"""In-memory Azure DevOps work item store for the simulator: projects, work item types with
states and fields, work items with every revision (for ``asOf`` reads), comments, and JSON Patch
application with the service's validation (unknown field TF51535, rule errors TF401320, invalid
area path TF401347, stale ``test /rev`` TF26071).

Values are kept in wire format (identities as IdentityRef dicts, dates as ADO date strings), so
the HTTP layer returns them as they are.
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from simulators.azure_devops_types import (SYSTEM_FIELDS, FieldDef, ProjectDef, SimError,
                                           format_date, parse_date)

READ_ONLY = {"System.Id", "System.Rev", "System.TeamProject", "System.WorkItemType",
             "System.CreatedDate", "System.CreatedBy", "System.ChangedDate", "System.ChangedBy",
             "System.CommentCount"}


@dataclass
class Revision:
    rev: int
    fields: dict[str, Any]
    relations: list[dict[str, Any]]
    changed: datetime
    watermark: int = 0  # the organization-wide order of revisions (the reporting stream's)


@dataclass
class WorkItemState:
    id: int
    project: str
    revisions: list[Revision] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current(self) -> Revision:
        return self.revisions[-1]

    def as_of(self, when: datetime | None) -> Revision | None:
        if when is None:
            return self.current
        found = None
        for revision in self.revisions:
            if revision.changed <= when:
                found = revision
        return found


def identity(value: Any, users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An IdentityRef for a user given as uniqueName, display name or 'Name <email>'."""
    if isinstance(value, dict):
        value = value.get("uniqueName") or value.get("displayName") or ""
    text = str(value).strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1:-1].strip()
    user = users.get(text.lower()) or {"displayName": text, "uniqueName": text}
    uid = str(uuid.uuid5(uuid.NAMESPACE_URL, user["uniqueName"].lower()))
    return {"displayName": user["displayName"], "uniqueName": user["uniqueName"], "id": uid,
            "url": f"https://vssps.example.test/_apis/Identities/{uid}",
            "imageUrl": f"https://example.test/_api/_common/identityImage?id={uid}",
            "descriptor": f"aad.{uid}"}


class Store:
    """All state of one simulated organization; callers hold the simulator's lock."""

    def __init__(self, organization: str, clock: Callable[[], datetime] | None = None):
        self.organization = organization
        self.projects: dict[str, ProjectDef] = {}  # lower-case name -> definition
        self.users: dict[str, dict[str, Any]] = {}  # lower-case uniqueName/displayName -> user
        self.items: dict[int, WorkItemState] = {}
        self.next_id = 1
        self.next_comment_id = 1
        self.next_watermark = 1  # reporting revisions stream (simulators/azure_devops_reporting.py)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._last_time = datetime(2000, 1, 1, tzinfo=timezone.utc)
        # an AttachedFile relation's url -> its attributes (name, resourceSize); raises SimError
        self.attached_file: Callable[[str], dict[str, Any]] = lambda url: {}

    # -- definitions ----------------------------------------------------------------------------
    def add_user(self, user: dict[str, Any]) -> None:
        for key in (user["uniqueName"], user.get("displayName", "")):
            if key:
                self.users[key.lower()] = {"displayName": user.get("displayName", key),
                                           "uniqueName": user["uniqueName"],
                                           "active": user.get("active", True)}

    def project(self, name: str) -> ProjectDef:
        found = self.projects.get(str(name).lower())
        if found is None:
            raise SimError(404, f"TF200016: The following project does not exist: {name}. Verify "
                           "that the name of the project is correct and that the project exists "
                           "on the specified Azure DevOps Server.", "ProjectDoesNotExistWithNameException")
        return found

    def now(self) -> datetime:
        """Strictly increasing time at millisecond precision (revision dates must increase)."""
        now = self.clock().astimezone(timezone.utc)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if now <= self._last_time:
            now = self._last_time + timedelta(milliseconds=1)
        self._last_time = now
        return now

    def item(self, item_id: int, project: str | None = None) -> WorkItemState:
        found = self.items.get(int(item_id))
        if found is None or (project is not None and found.project.lower() != project.lower()):
            raise SimError(404, f"TF401232: Work item {item_id} does not exist, or you do not have "
                           "permissions to read it.", "WorkItemUnauthorizedAccessException")
        return found

    # -- writes ---------------------------------------------------------------------------------
    def create(self, project: str, type_name: str, ops: list[dict[str, Any]], by: dict[str, Any],
               *, validate_only: bool = False, changed: datetime | None = None) -> WorkItemState:
        proj = self.project(project)
        wit = proj.work_item_type(type_name)
        now = changed or self.now()
        base = {"System.TeamProject": proj.name, "System.WorkItemType": wit.name,
                "System.State": wit.states[0]["name"], "System.Reason": "New",
                "System.AreaPath": proj.name, "System.IterationPath": proj.name,
                "System.CreatedDate": format_date(now), "System.CreatedBy": by,
                "System.CommentCount": 0}
        for ref, fdef in wit.fields.items():
            if fdef.default is not None:
                base[ref] = fdef.default
        fields, relations, history = self._apply(proj, wit.name, base, [], ops, current_rev=0,
                                                 item_id=0)
        if validate_only:
            return WorkItemState(id=0, project=proj.name,
                                 revisions=[Revision(0, fields, relations, now)])
        item = WorkItemState(id=self.next_id, project=proj.name)
        self.next_id += 1
        self.items[item.id] = item
        fields["System.Id"] = item.id
        self._commit(item, fields, relations, history, by, now)
        return item

    def update(self, item_id: int, project: str | None, ops: list[dict[str, Any]],
               by: dict[str, Any], *, validate_only: bool = False) -> WorkItemState:
        item = self.item(item_id, project)
        proj = self.project(item.project)
        current = item.current
        fields, relations, history = self._apply(
            proj, current.fields["System.WorkItemType"], copy.deepcopy(current.fields),
            copy.deepcopy(current.relations), ops, current_rev=current.rev, item_id=item.id)
        if not validate_only:
            self._commit(item, fields, relations, history, by, self.now())
        return item

    def _commit(self, item: WorkItemState, fields: dict[str, Any], relations: list[dict[str, Any]],
                history: str | None, by: dict[str, Any], now: datetime) -> None:
        rev = item.current.rev + 1 if item.revisions else 1
        fields.update({"System.Rev": rev, "System.ChangedDate": format_date(now),
                       "System.ChangedBy": by})
        fields.pop("System.History", None)
        if history:
            fields["System.History"] = history
            item.comments.append({"id": self.next_comment_id, "text": history, "by": by,
                                  "created": format_date(now), "rev": rev})
            self.next_comment_id += 1
        fields["System.CommentCount"] = len(item.comments)
        item.revisions.append(Revision(rev, fields, relations, now, self.next_watermark))
        self.next_watermark += 1
        self._last_time = max(self._last_time, now)  # seeded dates may lie ahead of the clock

    def _apply(self, proj: ProjectDef, type_name: str, fields: dict[str, Any],
               relations: list[dict[str, Any]], ops: list[dict[str, Any]], *, current_rev: int,
               item_id: int) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
        wit = proj.work_item_type(type_name)
        history = None
        if not isinstance(ops, list):
            raise SimError(400, "You must pass a valid patch document in the body of the request.",
                           "VssPropertyValidationException")
        for op in ops:
            kind, path = str(op.get("op", "")).lower(), str(op.get("path", ""))
            if kind == "test":
                self._test(op, path, fields, current_rev)
            elif path.lower().startswith("/fields/"):
                ref = self._field_ref(wit, path[len("/fields/"):])
                if ref == "System.History":
                    history = str(op.get("value") or "") or None
                elif kind == "remove":
                    fields.pop(ref, None)
                elif kind in ("add", "replace"):
                    fields[ref] = self._coerce(proj, wit.fields_all()[ref], op.get("value"), item_id)
                else:
                    raise SimError(400, f"The operation '{kind}' is not supported on {path}.",
                                   "VssPropertyValidationException")
            elif path.lower().startswith("/relations"):
                self._relation_op(kind, path, op.get("value"), relations)
            else:
                raise SimError(400, f"The path '{path}' is not valid for a work item patch.",
                               "VssPropertyValidationException")
        self._validate_rules(wit, fields)
        return fields, relations, history

    @staticmethod
    def _test(op: dict[str, Any], path: str, fields: dict[str, Any], current_rev: int) -> None:
        if path.lower() == "/rev":
            # learn.microsoft.com/rest/api/azure/devops/wit/work-items/update documents the
            # "test" operation but no error status, and the 7.1 spec lists only 200: answered
            # 412 with TF26071 and WorkItemRevisionMismatchException, as Azure DevOps Services
            # does; the connector takes 400 or 409 carrying that message the same way
            if str(op.get("value")) != str(current_rev):
                raise SimError(412, "TF26071: This work item has been changed by someone else "
                               "since you opened it. You will need to refresh it and discard your "
                               "changes.", "WorkItemRevisionMismatchException")
        elif path.lower().startswith("/fields/"):
            if fields.get(path[len("/fields/"):]) != op.get("value"):
                raise SimError(400, f"Test operation failed for {path}.", "TestPatchOperationFailedException")

    @staticmethod
    def _field_ref(wit: Any, name: str) -> str:
        for ref in wit.fields_all():
            if ref.lower() == name.lower():
                if ref in READ_ONLY:
                    raise SimError(400, f"TF401326: Invalid field status 'ReadOnly' for field "
                                   f"'{ref}'.", "RuleValidationException")
                return ref
        raise SimError(400, f"TF51535: Cannot find field {name}.",
                       "WorkItemTrackingFieldDefinitionNotFoundException")

    def _coerce(self, proj: ProjectDef, fdef: FieldDef, value: Any, item_id: int) -> Any:
        if value is None or value == "":
            return None
        try:
            if fdef.type == "boolean":
                return _to_bool(value)
            if fdef.type == "integer":
                return int(value)
            if fdef.type == "double":
                return float(value)
            if fdef.type == "dateTime":
                return format_date(parse_date(str(value)))
        except (TypeError, ValueError):
            raise _rule_error(fdef, "InvalidType") from None
        if fdef.type == "identity":
            return self._known_identity(fdef, value)
        text = str(value)
        if fdef.ref == "System.AreaPath" and text.lower() not in {a.lower() for a in proj.areas}:
            raise SimError(400, f"TF401347: Invalid tree name given for work item {item_id or -1}, "
                           "field 'System.AreaPath'.", "WorkItemTrackingTreeNodeNotFoundException")
        if fdef.allowed and text not in fdef.allowed:
            raise _rule_error(fdef, "LimitedToValues")
        return text

    def _known_identity(self, fdef: FieldDef, value: Any) -> dict[str, Any]:
        """Azure DevOps refuses an identity field naming someone who is not a (current) member
        of the organization (TF401320 rule error on the field; the harsher reading of "unknown
        identity" answers)."""
        ref = identity(value, self.users)
        user = self.users.get(ref["uniqueName"].lower())
        if user is None or user.get("active") is False:
            raise SimError(400, f"TF401320: Rule Error for field {fdef.name}. Error code: "
                           f"InvalidIdentity. The identity value '{ref['uniqueName']}' is an "
                           f"unknown or deactivated identity.", "RuleValidationException")
        return ref

    def _relation_op(self, kind: str, path: str, value: Any, relations: list[dict[str, Any]]) -> None:
        if kind == "add" and path.lower() in ("/relations/-", "/relations"):
            if not isinstance(value, dict) or not value.get("rel") or not value.get("url"):
                raise SimError(400, "A relation needs 'rel' and 'url'.", "VssPropertyValidationException")
            relation = {"rel": value["rel"], "url": value["url"],
                        "attributes": dict(value.get("attributes") or {})}
            relation["attributes"].setdefault("isLocked", False)
            if value["rel"] == "AttachedFile":  # simulators/azure_devops_attachments.py
                relation["attributes"].update(self.attached_file(value["url"]))
            relations.append(relation)
        elif kind == "remove":
            try:
                relations.pop(int(path.rsplit("/", 1)[1]))
            except (ValueError, IndexError):
                raise SimError(400, f"Invalid relation path {path}.", "VssPropertyValidationException") from None
        else:
            raise SimError(400, f"The operation '{kind}' is not supported on {path}.",
                           "VssPropertyValidationException")

    @staticmethod
    def _validate_rules(wit: Any, fields: dict[str, Any]) -> None:
        if not fields.get("System.Title"):
            raise _rule_error(wit.fields_all()["System.Title"], "Required, InvalidEmpty")
        if fields.get("System.State") not in wit.state_names():
            raise _rule_error(wit.fields_all()["System.State"],
                              "Required, HasValues, LimitedToValues, AllowsOldValue, InvalidEmpty")


def _rule_error(fdef: FieldDef, code: str) -> SimError:
    return SimError(400, f"TF401320: Rule Error for field {fdef.name}. Error code: {code}.",
                    "RuleValidationException",
                    {"FieldReferenceName": fdef.ref, "FieldStatusFlags": code.lower(),
                     "ErrorMessage": f"Rule Error for field {fdef.name}. Error code: {code}."})


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(value)


__all__ = ["Store", "WorkItemState", "Revision", "identity", "SYSTEM_FIELDS", "READ_ONLY"]
