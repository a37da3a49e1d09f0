"""The simulated Jira's workflow: transitions with screens, required screen fields, resolutions.

Rules (each from Atlassian's documentation):
- ``GET /issue/{id}/transitions`` lists only the transitions available from the issue's current
  status; with ``expand=transitions.fields`` each transition carries the fields of its screen
  (``FieldMetadata``: ``required``, ``schema``, ``name``, ``key``, ``operations``,
  ``allowedValues``); "fields hidden from the screen are not returned" (REST v3 "Get
  transitions", specs/jira/jira-cloud-platform-v3.json).
- ``POST /issue/{id}/transitions`` sets screen fields from ``fields`` or ``update``; "if a field
  is not configured to appear on the transition screen ... a field validation error will occur if
  it is submitted" (REST v2 "Perform a transition on an issue"). A required screen field that is
  missing is a 400 ErrorCollection with the field in ``errors``; harsher reading where the docs are
  silent: a required field must be sent even when the issue already holds a value.
- Resolution: ``GET /rest/api/2/resolution`` lists the site's resolutions (REST v3 "Get
  resolutions"); Jira Cloud's defaults are Done, Won't Do, Duplicate, Cannot Reproduce. The
  resolution is set by a transition screen and cleared only by a post function on a reopening
  transition ("Clear resolution", support.atlassian.com "Configure advanced work item workflows");
  ``resolutiondate`` is when it was set. Resolution is not on the edit screen: a ``PUT /issue``
  setting it is refused like any field that is not on the screen.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulators.jira_state import NOT_SETTABLE, FieldErrors, SimIssue

if TYPE_CHECKING:
    from simulators.jira_site import Site
    from simulators.jira_state import JiraStore

SCREEN_FIELDS = {"resolution": ("Resolution", {"type": "resolution", "system": "resolution"})}


def resolution_json(resolution: dict[str, Any], base: str) -> dict[str, Any]:
    return {"self": f"{base}/rest/api/2/resolution/{resolution['id']}", "id": resolution["id"],
            "name": resolution["name"], "description": resolution.get("description", "")}


def find_resolution(site: "Site", ref: Any) -> dict[str, Any] | None:
    wanted = ref if isinstance(ref, dict) else {}
    for resolution in site.resolutions:
        if str(wanted.get("id")) == resolution["id"] or wanted.get("name") == resolution["name"]:
            return resolution
    return None


def screen_fields(site: "Site", transition: dict[str, Any], base: str) -> dict[str, Any]:
    """The ``fields`` object of one transition (``expand=transitions.fields``)."""
    out = {}
    for fid, spec in (transition.get("screen") or {}).items():
        name, schema = SCREEN_FIELDS[fid]
        out[fid] = {"required": bool(spec.get("required")), "schema": schema, "name": name,
                    "key": fid, "hasDefaultValue": False, "operations": ["set"],
                    "allowedValues": [resolution_json(r, base) for r in site.resolutions]}
    return out


def transition_json(site: "Site", t: dict[str, Any], base: str, with_fields: bool) -> dict[str, Any]:
    out = {"id": t["id"], "name": t["name"], "to": site.status_json(t["to"], base),
           "hasScreen": bool(t.get("screen")), "isGlobal": t.get("from", "*") == "*",
           "isInitial": False, "isAvailable": True, "isConditional": False, "isLooped": False}
    if with_fields:
        out["fields"] = screen_fields(site, t, base)
    return out


def perform(store: "JiraStore", issue: SimIssue, body: dict[str, Any]) -> None:
    """Apply ``POST /issue/{id}/transitions``: validate the transition and its screen, then move."""
    site = store.site
    transition_id = str((body.get("transition") or {}).get("id", ""))
    available = {t["id"]: t for t in site.transitions_from(issue.status)}
    if transition_id not in available:
        raise FieldErrors(messages=[f"Transition id '{transition_id}' is not valid for this issue."])
    transition = available[transition_id]
    screen_values, other = _split(site, transition, dict(body.get("fields") or {}), body.get("update") or {})
    if other:
        store.edit(issue, other)  # raises "cannot be set" for anything not on a screen
    resolution = screen_values.get("resolution")
    if transition.get("clears_resolution"):
        issue.values["resolution"], issue.values["resolutiondate"] = None, None
    store.transition(issue, transition_id)
    if resolution is not None:
        issue.values["resolution"], issue.values["resolutiondate"] = resolution, issue.updated


def _split(site: "Site", transition: dict[str, Any], fields: dict[str, Any],
           update: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(screen field values, other fields) of a transition request; 400 when a required screen
    field is missing, has an unknown value, or a screen-only field is not on this screen."""
    screen = transition.get("screen") or {}
    for fid, ops in update.items():
        if fid != "comment":
            for op in ops or []:
                if "set" in op:
                    fields[fid] = op["set"]
    errors, values = {}, {}
    for fid in SCREEN_FIELDS:
        if fid in fields and fid not in screen:
            errors[fid] = NOT_SETTABLE.format(fid)
        elif fid in screen:
            values[fid] = fields.get(fid)
            if screen[fid].get("required") and fields.get(fid) in (None, "", {}):
                errors[fid] = f"{SCREEN_FIELDS[fid][0]} is required."
    if errors:
        raise FieldErrors(errors)
    return _resolve(site, values), {k: v for k, v in fields.items() if k not in SCREEN_FIELDS}


def _resolve(site: "Site", values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    if values.get("resolution") is not None:
        found = find_resolution(site, values["resolution"])
        if found is None:
            names = ", ".join(r["name"] for r in site.resolutions)
            raise FieldErrors({"resolution": f"Resolution '{_ref(values['resolution'])}' is not "
                               f"valid (known: {names})."})
        out["resolution"] = found
    return out


def _ref(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("name") or value.get("id")
    return value
