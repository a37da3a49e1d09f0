"""The simulated Jira's REST routes (``/rest/api/2``), registered on a JiraSimulator's app."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from flask import Response, g, jsonify, request

from simulators.jira_jql import JqlError, parse
from simulators.jira_render import comment_json, field_selection, issue_json, link_json
from simulators.jira_state import FieldErrors, SimIssue
from simulators.jira_workflow import perform, resolution_json, transition_json

if TYPE_CHECKING:
    from simulators.jira import JiraSimulator

API = "/rest/api/2"
NO_ISSUE = "Issue does not exist or you do not have permission to see it."


def add_routes(sim: "JiraSimulator") -> None:
    from simulators.jira import error, field_errors

    app, site = sim.app, lambda: sim.site

    def base() -> str:
        return request.host_url.rstrip("/")

    def with_issue(ref: str, fn: Any) -> Response:
        with sim.lock:
            issue = sim.store.find(ref)
            if issue is None:
                return error(404, [NO_ISSUE])
            try:
                return fn(issue)
            except FieldErrors as exc:
                return field_errors(exc)

    @app.get(f"{API}/serverInfo")
    def server_info() -> Response:
        now = datetime.now(timezone.utc)
        return jsonify({"baseUrl": base(), "displayUrl": base(), "version": "1001.0.0-SNAPSHOT",
                        "versionNumbers": [1001, 0, 0], "deploymentType": "Cloud",
                        "buildNumber": 100287, "buildDate": "2026-01-01T00:00:00.000+0000",
                        "serverTime": site().time(now), "scmInfo": "tiersync-simulator",
                        "serverTitle": site().title, "serverTimeZone": site().time_zone})

    @app.get(f"{API}/myself")
    def myself() -> Response:
        return jsonify(site().user_json(g.jira_user, base()))

    @app.get(f"{API}/user/search")
    def user_search() -> Response:
        query = (request.args.get("query") or "").lower()
        # a user who hides the email (profile visibility) is not found by it either: Jira Cloud
        # "returns users whose ... email address matches only if the email is visible to the
        # caller" (REST v3 "Find users", privacy; harsher reading where unclear)
        found = [u for u in site().users if query and (
            (query in u.get("emailAddress", "").lower() and not u.get("hide_email"))
            or query in u.get("displayName", "").lower())]
        return jsonify([site().user_json(u, base()) for u in found])

    @app.get(f"{API}/field")
    def fields() -> Response:
        return jsonify(site().field_details())

    @app.get(f"{API}/priority")
    def priorities() -> Response:
        return jsonify([site().priority_json(p, base()) for p in site().priorities])

    @app.get(f"{API}/status")
    def statuses() -> Response:
        return jsonify([site().status_json(name, base()) for name in site().statuses])

    @app.get(f"{API}/project/<ref>")
    def project(ref: str) -> Response:
        found = site().project(ref)
        if found is None:
            return error(404, [f"No project could be found with key '{ref}'."])
        return jsonify(site().project_json(found, base(), full=True))

    @app.get(f"{API}/project/<ref>/statuses")
    def project_statuses(ref: str) -> Response:
        found = site().project(ref)
        if found is None:
            return error(404, [f"No project could be found with key '{ref}'."])
        statuses = [site().status_json(name, base()) for name in site().statuses]
        return jsonify([{"self": f"{base()}/rest/api/2/issuetype/{t['id']}", "id": t["id"],
                         "name": t["name"], "subtask": False, "statuses": statuses}
                        for t in found.issue_types])

    @app.get(f"{API}/issue/createmeta/<ref>/issuetypes")
    def createmeta_types(ref: str) -> Response:
        found = site().project(ref)
        if found is None:
            return error(404, [f"No project could be found with key '{ref}'."])
        types = [site().issuetype_json(found, t["name"], base()) for t in found.issue_types]
        return jsonify({"startAt": 0, "maxResults": 50, "total": len(types), "issueTypes": types})

    @app.get(f"{API}/issue/createmeta/<ref>/issuetypes/<type_id>")
    def createmeta_fields(ref: str, type_id: str) -> Response:
        found = site().project(ref)
        if found is None or type_id not in [t["id"] for t in found.issue_types]:
            return error(404, [f"Issue type {type_id} does not exist in project {ref}."])
        from simulators.jira_meta import create_fields
        items = create_fields(site(), found, base())
        start = int(request.args.get("startAt", 0))
        size = int(request.args.get("maxResults", 50))
        return jsonify({"startAt": start, "maxResults": size, "total": len(items),
                        "fields": items[start:start + size]})

    @app.route(f"{API}/search/jql", methods=["GET", "POST"])
    def search() -> Response:
        params = _search_params()
        try:
            with sim.lock:
                return jsonify(_search(sim, params, base()))
        except JqlError as exc:
            return error(400, [str(exc)])

    @app.post(f"{API}/issue/bulkfetch")
    def bulk_fetch() -> Response:
        """Bulk fetch issues (``POST /rest/api/3/issue/bulkfetch``, operation ``bulkFetchIssues``,
        specs/jira/jira-cloud-platform-v3.json): "You can request up to 100 issues", by id or key
        (a moved issue's old key resolves); "Issues will be returned in ascending id order";
        issues that are not found "won't be returned" (nor listed in ``issueErrors``); ``fields``
        defaults to ``*navigable``, at most 5 ``properties``. Read from the issues as they are,
        like Get issue: the spec names eventual consistency for the JQL search only."""
        body = request.get_json(silent=True)
        refs = body.get("issueIdsOrKeys") if isinstance(body, dict) else None
        if not isinstance(refs, list) or not refs:
            return error(400, ["issueIdsOrKeys: must not be empty."])
        if len(refs) > BULK_FETCH_MAX:
            return error(400, [f"You can request up to {BULK_FETCH_MAX} issues."])
        properties = [str(p) for p in body.get("properties") or []]
        if len(properties) > 5:
            return error(400, ["A maximum of 5 issue property keys can be specified."])
        selected = field_selection(list(body.get("fields") or []), "*navigable")
        with sim.lock:
            by_id = {str(i.id): i for i in sim.store.issues.values()}
            found = {}
            for ref in refs:
                issue = by_id.get(str(ref)) or sim.store.find(str(ref).upper())
                if issue is not None:
                    found[issue.id] = issue
            issues = [issue_json(site(), found[i], base(), selected, properties) for i in sorted(found)]
        return jsonify({"issues": issues, "issueErrors": []})

    @app.post(f"{API}/issue")
    def create_issue() -> Response:
        body = request.get_json(silent=True) or {}
        with sim.lock:
            try:
                issue = sim.store.create(body, g.jira_user["accountId"])
            except FieldErrors as exc:
                return field_errors(exc)
        response = jsonify({"id": str(issue.id), "key": issue.key,
                            "self": f"{base()}/rest/api/2/issue/{issue.id}"})
        response.status_code = 201
        return response

    @app.get(f"{API}/issue/<ref>")
    def get_issue(ref: str) -> Response:
        selected = field_selection(request.args.getlist("fields"), "*all")
        props = request.args.getlist("properties")
        expand = ",".join(request.args.getlist("expand"))

        def render(issue: SimIssue) -> Response:
            out = issue_json(site(), issue, base(), selected, props)
            # Get issue, ``expand``: "transitions Returns all possible transitions for the
            # issue"; their screen fields only with the nested ``transitions.fields`` ("use the
            # . dot notation", "Expansion", specs/jira/jira-cloud-platform-v3.json)
            if "transitions" in expand.split(",") or "transitions.fields" in expand.split(","):
                with_fields = "transitions.fields" in expand.split(",")
                out["transitions"] = [transition_json(site(), t, base(), with_fields)
                                      for t in site().transitions_from(issue.status)]
            return jsonify(out)
        return with_issue(ref, render)

    @app.put(f"{API}/issue/<ref>")
    def edit_issue(ref: str) -> Response:
        body = request.get_json(silent=True) or {}
        if body.get("update"):
            return error(400, ["The simulator supports edits through 'fields' only."])

        def edit(issue: SimIssue) -> Response:
            sim.store.edit(issue, body.get("fields") or {})
            return Response(status=204)
        return with_issue(ref, edit)

    @app.get(f"{API}/resolution")
    def resolutions() -> Response:
        return jsonify([resolution_json(r, base()) for r in site().resolutions])

    @app.get(f"{API}/issue/<ref>/transitions")
    def transitions(ref: str) -> Response:
        with_fields = "transitions.fields" in (request.args.get("expand") or "")
        return with_issue(ref, lambda i: jsonify({"expand": "transitions", "transitions": [
            transition_json(site(), t, base(), with_fields) for t in site().transitions_from(i.status)]}))

    @app.post(f"{API}/issue/<ref>/transitions")
    def do_transition(ref: str) -> Response:
        body = request.get_json(silent=True) or {}

        def move(issue: SimIssue) -> Response:
            perform(sim.store, issue, body)
            for op in (body.get("update") or {}).get("comment") or []:
                sim.store.add_comment(issue, (op.get("add") or {}).get("body"), g.jira_user["accountId"])
            return Response(status=204)
        return with_issue(ref, move)

    @app.get(f"{API}/issue/<ref>/comment")
    def comments(ref: str) -> Response:
        start = int(request.args.get("startAt", 0))
        size = min(int(request.args.get("maxResults", 100)), 100)
        props = "properties" in (request.args.get("expand") or "")

        def page(issue: SimIssue) -> Response:
            ordered = issue.comments[::-1] if request.args.get("orderBy") == "-created" else issue.comments
            shown = ordered[start:start + size]
            return jsonify({"startAt": start, "maxResults": size, "total": len(issue.comments),
                            "comments": [comment_json(site(), issue, c, base(), props) for c in shown]})
        return with_issue(ref, page)

    @app.post(f"{API}/issue/<ref>/comment")
    def add_comment(ref: str) -> Response:
        body = request.get_json(silent=True) or {}

        def add(issue: SimIssue) -> Response:
            comment = sim.store.add_comment(issue, body.get("body"), g.jira_user["accountId"],
                                            body.get("properties"))
            response = jsonify(comment_json(site(), issue, comment, base()))
            response.status_code = 201
            return response
        return with_issue(ref, add)

    @app.get(f"{API}/issue/<ref>/properties")
    def property_keys(ref: str) -> Response:
        return with_issue(ref, lambda i: jsonify({"keys": [
            {"self": f"{base()}/rest/api/2/issue/{i.id}/properties/{k}", "key": k} for k in i.properties]}))

    @app.route(f"{API}/issue/<ref>/properties/<key>", methods=["GET", "PUT", "DELETE"])
    def issue_property(ref: str, key: str) -> Response:
        def handle(issue: SimIssue) -> Response:
            if request.method == "PUT":
                value = request.get_json(silent=True)
                if value is None:
                    return error(400, ["The property value must be valid JSON."])
                created = key not in issue.properties
                issue.properties[key] = value
                return Response(status=201 if created else 200)
            if key not in issue.properties:
                return error(404, [f"The property with key '{key}' does not exist."])
            if request.method == "DELETE":
                del issue.properties[key]
                return Response(status=204)
            return jsonify({"key": key, "value": issue.properties[key]})
        return with_issue(ref, handle)

    @app.route(f"{API}/issue/<ref>/remotelink", methods=["GET", "POST"])
    def remote_links(ref: str) -> Response:
        def handle(issue: SimIssue) -> Response:
            if request.method == "GET":
                return jsonify([link_json(issue, l, base()) for l in issue.remote_links])
            link, created = sim.store.upsert_link(issue, request.get_json(silent=True) or {})
            response = jsonify({"id": link["id"], "self": link_json(issue, link, base())["self"]})
            response.status_code = 201 if created else 200
            return response
        return with_issue(ref, handle)

    @app.get("/rest/applinks/latest/listApplicationlinks")
    def application_links() -> Response:
        return jsonify({"list": []})


def _search_params() -> dict[str, list[str]]:
    if request.method == "POST":
        body = request.get_json(silent=True) or {}
        return {k: (v if isinstance(v, list) else [v]) for k, v in body.items() if v is not None}
    return request.args.to_dict(flat=False)


def _search(sim: "JiraSimulator", params: dict[str, list[str]], base: str) -> dict[str, Any]:
    jql = (params.get("jql") or [""])[0]
    query = parse(jql, sim.site)
    selected = field_selection(params.get("fields") or [], "id")
    size = max(1, min(int((params.get("maxResults") or [50])[0]), page_cap(params)))
    reconcile = {p.strip() for raw in params.get("reconcileIssues") or [] for p in str(raw).split(",")}
    # matched and sorted on the indexed copy (eventual consistency, simulators/jira_index.py)
    found = sorted(((query.sort_key(c), i) for c, i in sim.index.searchable(
        sim.store.issues.values(), reconcile) if query.matches(c)), key=lambda pair: pair[0])
    token = (params.get("nextPageToken") or [None])[0]
    if token:
        after = _read_token(token, jql)
        found = [pair for pair in found if pair[0] > after]
    page = found[:size]
    properties = params.get("properties") or []
    result: dict[str, Any] = {"issues": [issue_json(sim.site, i, base, selected, properties) for _, i in page],
                              "isLast": len(found) <= size}
    if len(found) > size:
        result["nextPageToken"] = _make_token(page[-1][0], jql)
    return result


BULK_FETCH_MAX = 100  # issues per bulk fetch (spec: "You can request up to 100 issues")
# issues per search/jql page. Spec, ``maxResults``: "API may return fewer items per page where
# a large number of fields or properties are requested. The greatest number of items returned
# per page is achieved when requesting id or key only. It returns max 5000 issues." The
# simulator's harsher reading: 5000 only for ids/keys; a listing that adds nothing but
# ``updated`` (no properties, no expand) at most 1000, a fifth of it; anything else 100.
PAGE_CAP_IDS, PAGE_CAP_LISTING, PAGE_CAP_FIELDS = 5000, 1000, 100


def page_cap(params: dict[str, list[str]]) -> int:
    """The most issues one search/jql page holds for this request (see ``PAGE_CAP_*``)."""
    items = {p.strip() for raw in params.get("fields") or ["id"] for p in str(raw).split(",")
             if p.strip()}
    extras = any(str(v).strip() for key in ("properties", "expand") for v in params.get(key) or [])
    if items <= {"id", "key"} and not extras:
        return PAGE_CAP_IDS
    if items <= {"id", "key", "updated"} and not extras:
        return PAGE_CAP_LISTING
    return PAGE_CAP_FIELDS


def _make_token(after: list[int], jql: str) -> str:
    """Keyset token: the last sort key delivered, bound to the query it came from."""
    data = {"after": after, "q": hashlib.sha1(jql.encode()).hexdigest()[:12]}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _read_token(token: str, jql: str) -> list[int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] == hashlib.sha1(jql.encode()).hexdigest()[:12]:
            return [int(v) for v in data["after"]]
    except (ValueError, KeyError, TypeError):
        pass
    raise JqlError("The provided next page token is invalid or expired.")
