"""The Azure DevOps REST resources the simulator answers, as plain functions of the store.

Each handler takes the matched route values, the query parameters and the JSON body and returns
the response body; errors are raised as :class:`SimError`. Shapes follow the recorded examples in
/work/shared/specs/azure-devops/examples.
"""
from __future__ import annotations

from typing import Any

from simulators import azure_devops_wiql as wiql
from simulators.azure_devops_attachments import LOCATION as ATTACHMENTS_LOCATION
from simulators.azure_devops_identities import IDENTITY_LOCATION
from simulators.azure_devops_reporting import LOCATION as REPORTING_LOCATION
from simulators.azure_devops_store import Revision, Store, WorkItemState
from simulators.azure_devops_types import SimError, format_date, parse_date

# Route discovery: every resource the connector calls (ids from the SDK's ``location_id=``).
LOCATIONS: list[dict[str, Any]] = [
    {"id": "1a9c53f7-f243-4447-b110-35ef023636e4", "resourceName": "wiql", "resourceVersion": 2,
     "routeTemplate": "{project}/{team}/_apis/{area}/{resource}/{id}"},
    {"id": "908509b6-4248-4475-a1cd-829139ba419f", "resourceName": "workitemsbatch",
     "resourceVersion": 1, "routeTemplate": "{project}/_apis/{area}/{resource}"},
    {"id": "62d3d110-0047-428c-ad3c-4fe872c91c74", "resourceName": "workitems", "resourceVersion": 3,
     "routeTemplate": "{project}/_apis/{area}/{resource}/${type}"},
    {"id": "72c7ddf8-2cdc-4f60-90cd-ab71c14a399b", "resourceName": "workitems", "resourceVersion": 3,
     "routeTemplate": "{project}/_apis/{area}/{resource}/{id}"},
    {"id": "608aac0a-32e1-4493-a863-b9cf4566d257", "resourceName": "comments", "resourceVersion": 4,
     "routeTemplate": "{project}/_apis/{area}/workItems/{workItemId}/{resource}/{commentId}"},
    {"id": "7c9d7a76-4a09-43e8-b5df-bd792f4ac6aa", "resourceName": "states", "resourceVersion": 1,
     "routeTemplate": "{project}/_apis/{area}/workitemtypes/{type}/{resource}"},
    {"id": "bd293ce5-3d25-4192-8e67-e8092e879efb", "resourceName": "fields", "resourceVersion": 3,
     "routeTemplate": "{project}/_apis/{area}/workitemtypes/{type}/{resource}/{field}"},
    {"id": "7c8d7a76-4a09-43e8-b5df-bd792f4ac6aa", "resourceName": "workitemtypes",
     "resourceVersion": 2, "routeTemplate": "{project}/_apis/{area}/{resource}/{type}"},
    {"id": "5a172953-1b41-49d3-840a-33f79c3ce89f", "resourceName": "classificationnodes",
     "resourceVersion": 2, "routeTemplate": "{project}/_apis/{area}/{resource}/{structureGroup}/{*path}"},
]
for _loc in LOCATIONS:
    _loc.update({"area": "wit", "minVersion": "1.0", "maxVersion": "7.1", "releasedVersion": "7.0"})
LOCATIONS.append(IDENTITY_LOCATION)  # @mentions look identities up (azure_devops_identities)
LOCATIONS.append(ATTACHMENTS_LOCATION)  # simulators/azure_devops_attachments.py
LOCATIONS.append(REPORTING_LOCATION)  # simulators/azure_devops_reporting.py

BATCH_CAP = 200


def options() -> dict[str, Any]:
    return {"count": len(LOCATIONS), "value": LOCATIONS}


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


# -- rendering ------------------------------------------------------------------------------------
def render_item(base: str, item: WorkItemState, revision: Revision, expand: str = "none",
                fields: list[str] | None = None) -> dict[str, Any]:
    url = f"{base}/_apis/wit/workItems/{item.id}"
    values = {k: v for k, v in revision.fields.items() if v is not None}
    if fields:
        wanted = {f.lower() for f in fields}
        values = {k: v for k, v in values.items() if k.lower() in wanted}
    out: dict[str, Any] = {"id": item.id, "rev": revision.rev, "fields": values, "url": url}
    comment = next((c for c in item.comments if c["rev"] == revision.rev), None)
    if comment is not None:
        out["commentVersionRef"] = {"commentId": comment["id"], "version": 1,
                                    "url": f"{url}/comments/{comment['id']}/versions/1"}
    expand = (expand or "none").lower()
    if expand in ("relations", "all") and revision.relations:
        out["relations"] = revision.relations
    if expand in ("links", "all"):
        out["_links"] = {"self": {"href": url}, "fields": {"href": f"{base}/_apis/wit/fields"},
                         "workItemUpdates": {"href": f"{url}/updates"},
                         "workItemRevisions": {"href": f"{url}/revisions"},
                         "workItemComments": {"href": f"{url}/comments"},
                         "html": {"href": f"{base}/{item.project}/_workitems/edit/{item.id}"}}
    return out


def render_comment(base: str, item: WorkItemState, comment: dict[str, Any]) -> dict[str, Any]:
    return {"workItemId": item.id, "id": comment["id"], "version": 1, "text": comment["text"],
            "renderedText": comment["text"], "format": "html",
            "createdBy": comment["by"], "createdDate": comment["created"],
            "modifiedBy": comment["by"], "modifiedDate": comment["created"], "isDeleted": False,
            "url": f"{base}/_apis/wit/workItems/{item.id}/comments/{comment['id']}"}


# -- work items -----------------------------------------------------------------------------------
def get_item(store: Store, base: str, project: str | None, item_id: str,
             params: dict[str, str]) -> dict[str, Any]:
    item = store.item(int(item_id), project)
    as_of = parse_date(params["asOf"]) if params.get("asOf") else None
    revision = item.as_of(as_of)
    if revision is None:
        raise SimError(404, f"TF401232: Work item {item_id} does not exist at {params['asOf']}.",
                       "WorkItemUnauthorizedAccessException")
    fields = params["fields"].split(",") if params.get("fields") else None
    return render_item(base, item, revision, params.get("$expand", "none"), fields)


def create_item(store: Store, base: str, project: str, type_name: str, params: dict[str, str],
                body: Any, by: dict[str, Any]) -> dict[str, Any]:
    item = store.create(project, type_name, body, by, validate_only=_truthy(params.get("validateOnly")))
    return render_item(base, item, item.current, params.get("$expand") or "relations")


def update_item(store: Store, base: str, project: str | None, item_id: str,
                params: dict[str, str], body: Any, by: dict[str, Any]) -> dict[str, Any]:
    item = store.update(int(item_id), project, body, by,
                        validate_only=_truthy(params.get("validateOnly")))
    return render_item(base, item, item.current, params.get("$expand") or "relations")


def batch(store: Store, base: str, project: str, body: Any) -> dict[str, Any]:
    body = body if isinstance(body, dict) else {}
    ids = body.get("ids") or []
    if not ids or len(ids) > BATCH_CAP:
        raise SimError(400, f"The number of work item ids must be between 1 and {BATCH_CAP}; "
                       f"got {len(ids)}.", "VssPropertyValidationException")
    as_of = parse_date(body["asOf"]) if body.get("asOf") else None
    omit = str(body.get("errorPolicy", "fail")).lower() == "omit"
    values: list[Any] = []
    for item_id in ids:
        try:
            item = store.item(int(item_id), project)
            revision = item.as_of(as_of)
            if revision is None:
                raise SimError(404, f"TF401232: Work item {item_id} does not exist, or you do not "
                               "have permissions to read it.", "WorkItemUnauthorizedAccessException")
        except SimError:
            if omit:
                values.append(None)
                continue
            raise
        values.append(render_item(base, item, revision, body.get("$expand") or "none",
                                  body.get("fields")))
    return {"count": len(values), "value": values}


def comments(store: Store, base: str, project: str, item_id: str,
             params: dict[str, str]) -> dict[str, Any]:
    item = store.item(int(item_id), project)
    ordered = sorted(item.comments, key=lambda c: c["id"],
                     reverse=params.get("order", "desc").lower() != "asc")
    top = min(int(params.get("$top") or BATCH_CAP), BATCH_CAP)
    start = int(params.get("continuationToken") or 0)
    page = ordered[start:start + top]
    out: dict[str, Any] = {"totalCount": len(ordered), "count": len(page),
                           "comments": [render_comment(base, item, c) for c in page],
                           "url": f"{base}/_apis/wit/workItems/{item.id}/comments"}
    if start + top < len(ordered):
        out["continuationToken"] = str(start + top)
        out["nextPage"] = f"{out['url']}?continuationToken={start + top}"
    return out


# -- WIQL -----------------------------------------------------------------------------------------
def run_wiql(store: Store, base: str, project: str, params: dict[str, str], body: Any,
             cap: int, me: str, honour_top: bool = True) -> dict[str, Any]:
    proj = store.project(project)
    text = body.get("query") if isinstance(body, dict) else None
    if not text:
        raise SimError(400, "TF51006: The query statement is missing.", "WorkItemTrackingQueryException")
    query = wiql.parse(text)
    all_fields: dict[str, Any] = {}
    for wit in proj.types.values():
        all_fields.update(wit.fields_all())
    now = store.now()
    evaluator = wiql.Evaluator(all_fields, proj.name, _truthy(params.get("timePrecision")), now, me)
    evaluator.check(query)
    rows = [item.current.fields for item in store.items.values()
            if item.project == proj.name and evaluator.matches(query, item.current.fields)]
    rows.sort(key=evaluator.sort_key(query))
    top = int(params["$top"]) if params.get("$top") else None
    if (top is None or not honour_top) and len(rows) > cap:
        raise SimError(400, f"VS402337: The number of work items returned exceeds the size limit of "
                       f"{cap}. Change the query to return fewer work items.", "VssServiceException")
    rows = rows[:top] if top is not None else rows
    refs = [{"referenceName": evaluator.fdef(f).ref, "name": evaluator.fdef(f).name,
             "url": f"{base}/_apis/wit/fields/{evaluator.fdef(f).ref}"} for f in query.fields]
    return {"queryType": "flat", "queryResultType": "workItem", "asOf": format_date(now),
            "columns": refs,
            "sortColumns": [{"field": {"referenceName": evaluator.fdef(f).ref,
                                       "name": evaluator.fdef(f).name,
                                       "url": f"{base}/_apis/wit/fields/{evaluator.fdef(f).ref}"},
                             "descending": desc} for f, desc in query.order],
            "workItems": [{"id": r["System.Id"], "url": f"{base}/_apis/wit/workItems/{r['System.Id']}"}
                          for r in rows]}


# -- metadata -------------------------------------------------------------------------------------
def states(store: Store, project: str, type_name: str) -> dict[str, Any]:
    wit = store.project(project).work_item_type(type_name)
    return {"count": len(wit.states), "value": [dict(s) for s in wit.states]}


def fields(store: Store, base: str, project: str, type_name: str, field: str | None,
           params: dict[str, str]) -> dict[str, Any]:
    wit = store.project(project).work_item_type(type_name)
    expand = bool(params.get("$expand"))
    defs = wit.fields_all()
    if field is not None:
        found = next((f for ref, f in defs.items() if ref.lower() == field.lower()), None)
        if found is None:
            raise SimError(404, f"TF51535: Cannot find field {field}.",
                           "WorkItemTrackingFieldDefinitionNotFoundException")
        return found.to_api(base, expand)
    return {"count": len(defs), "value": [f.to_api(base, expand) for f in defs.values()]}


def work_item_type(store: Store, base: str, project: str, type_name: str) -> dict[str, Any]:
    wit = store.project(project).work_item_type(type_name)
    return {"name": wit.name, "referenceName": f"Custom.{wit.name.replace(' ', '')}",
            "description": wit.description, "color": "009CCC", "isDisabled": False,
            "states": [dict(s) for s in wit.states],
            "fields": [{"referenceName": f.ref, "name": f.name} for f in wit.fields_all().values()],
            "url": f"{base}/_apis/wit/workItemTypes/{wit.name}"}


def areas(store: Store, project: str, group: str, path: str | None) -> dict[str, Any]:
    proj = store.project(project)
    if group.lower() != "areas":
        return {"id": 1, "name": proj.name, "structureType": "iteration", "hasChildren": False,
                "path": f"\\{proj.name}\\Iteration"}
    node = proj.area_tree()
    for part in [p for p in (path or "").replace("/", "\\").split("\\") if p]:
        node = next((c for c in node.get("children", []) if c["name"].lower() == part.lower()), None)
        if node is None:
            raise SimError(404, f"The classification node {path} does not exist.",
                           "WorkItemTrackingTreeNodeNotFoundException")
    return node



def add_comment(store: Store, base: str, project: str, item_id: str, body: Any,
                caller: dict[str, Any]) -> dict[str, Any]:
    """Comments - Add (learn.microsoft.com/rest/api/azure/devops/wit/comments/add, 7.1-preview.4):
    ``{"text": ...}``, answers the Comment. No ``test /rev``: a comment never conflicts with an
    edit. Harsher reading where the page is silent: the comment still makes a new revision of
    the work item (``System.History``, ``System.CommentCount``), as one written through a patch."""
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise SimError(400, "VS403691: The comment text is required.", "ArgumentNullException")
    item = store.update(int(item_id), project, [{"op": "add", "path": "/fields/System.History",
                                                 "value": text}], caller)
    return render_comment(base, item, item.comments[-1])
