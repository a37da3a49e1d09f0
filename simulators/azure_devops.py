"""A local Azure DevOps (Boards) simulator: route discovery, WIQL, work items batch, work item
create/get/update with JSON Patch, comments, work item type states/fields and area nodes, with
Basic-auth PAT checks and Azure DevOps' rate-limit headers.

    sim = AzureDevOpsSimulator()          # default fixture: org "myorg", project "Support"
    sim.start()
    section = connector_config(sim)       # {"config": {...}, "env": {"AZURE_DEVOPS_PAT": ...}}
"""
from __future__ import annotations

import base64
import copy
import json
import re
import time
from importlib import resources
from typing import Any, Callable

from flask import Response, jsonify, request

from simulators import azure_devops_api as api
from simulators import azure_devops_identities as identities
from simulators import azure_devops_reporting as reporting
from simulators.azure_devops_attachments import AdoFiles
from simulators.azure_devops_attachments import add_routes as add_attachment_routes
from simulators.azure_devops_store import Store, identity
from simulators.azure_devops_types import ProjectDef, SimError, format_date, parse_date
from simulators.base import Faults, Simulator
from simulators.profile import Profile, Window, retry_after_text

DEFAULT_PAT = "sim-azure-devops-pat"
HUMAN = "tier2.agent@fabrikam.example"
_ORG = r"/(?P<org>[^/]+)"
_PROJ = r"/(?P<project>[^/]+)"
_WIT = r"/_apis/wit"
# preview APIs (the SDK's "[Preview API]"): the Comments API and the reporting revisions stream
_PREVIEW = re.compile(r"/_apis/wit/(workitems/\d+/comments|reporting/workitemrevisions)", re.IGNORECASE)
# Azure DevOps' global limit is 200 TSTUs per five minutes; a request costs a fraction of one,
# depending on the work it makes. The simulator counts requests, harsher than most real loads.
DELAY_AFTER = 3000
_READ_ONLY_POST = re.compile(r"/_apis/wit/(wiql|workitemsbatch)/?$", re.IGNORECASE)


def load_default_fixture() -> dict[str, Any]:
    text = resources.files("simulators").joinpath("fixtures/azure_devops.json").read_text("utf-8")
    return json.loads(text)


class AzureDevOpsSimulator(Simulator):
    name = "azure_devops"

    def __init__(self, faults: Faults | None = None, *, pat: str | None = None,
                 fixture: dict[str, Any] | None = None, wiql_cap: int = 20000,
                 wiql_honours_top: bool = True, profile: Profile | None = None,
                 reporting_comment_refs: bool = False):
        self.pat = pat  # None: any non-empty PAT is accepted
        # whether the reporting revisions stream's values carry commentVersionRef: the
        # documentation does not say, so not by default (the harsher reading)
        self.reporting_comment_refs = reporting_comment_refs
        self.wiql_cap = wiql_cap
        # False: answer VS402337 past the cap even when $top is given (exercises window halving)
        self.wiql_honours_top = wiql_honours_top
        self._fixture = fixture if fixture is not None else load_default_fixture()
        self.routes = self._route_table()
        # realistic throttling: answers past this many per five minutes come back delayed
        self.delay_after = DELAY_AFTER
        self._delay_window: Window | None = None
        super().__init__(faults, profile)

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        self.files = AdoFiles()  # attachments (simulators/azure_devops_attachments.py)
        self.seed(self._fixture)

    def seed(self, fixture: dict[str, Any]) -> None:
        """Replace the whole state with ``fixture`` (format: simulators/fixtures/azure_devops.json)."""
        with self.lock:
            self._fixture = copy.deepcopy(fixture)
            store = Store(fixture.get("organization", "myorg"))
            for user in fixture.get("users", []):
                store.add_user(user)
            service = fixture.get("service_user") or {"displayName": "tiersync service",
                                                      "uniqueName": "tiersync@fabrikam.example"}
            store.add_user(service)
            self.service_user = identity(service["uniqueName"], store.users)
            for project in fixture.get("projects", []):
                store.projects[project["name"].lower()] = ProjectDef.from_fixture(project)
            self.store = store
            store.attached_file = self.files.attributes
            self.notifications: list[dict[str, Any]] = []  # @mention notifications "sent"
            for spec in fixture.get("work_items", []):
                self._seed_item(spec)

    def _seed_item(self, spec: dict[str, Any]) -> None:
        ops = [{"op": "add", "path": f"/fields/{k}", "value": v} for k, v in spec["fields"].items()]
        ops += [{"op": "add", "path": "/relations/-", "value": r} for r in spec.get("relations", [])]
        by = identity(spec.get("created_by", HUMAN), self.store.users)
        changed = parse_date(spec["changed_date"]) if spec.get("changed_date") else None
        item = self.store.create(spec.get("project", next(iter(self.store.projects.values())).name),
                                 spec.get("type", "Engagement Item"), ops, by, changed=changed)
        for comment in spec.get("comments", []):
            self.store.update(item.id, None, [{"op": "add", "path": "/fields/System.History",
                                               "value": comment["text"]}],
                              identity(comment.get("by", HUMAN), self.store.users))

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"organization": self.store.organization,
                    "work_items": [self._item_snapshot(item) for item in self.store.items.values()],
                    "notifications": [dict(n) for n in self.notifications],
                    "identities": {user["uniqueName"]: identities.identity_id(user["uniqueName"])
                                   for user in self.store.users.values()}}

    @staticmethod
    def _item_snapshot(item: Any) -> dict[str, Any]:
        fields = {k: (v.get("uniqueName") if isinstance(v, dict) else v)
                  for k, v in item.current.fields.items() if v is not None}
        return {"id": item.id, "rev": item.current.rev, "project": item.project,
                "type": fields.get("System.WorkItemType"), "state": fields.get("System.State"),
                "title": fields.get("System.Title"),
                "tags": [t.strip() for t in str(fields.get("System.Tags") or "").split(";") if t.strip()],
                "fields": fields,
                "comments": [{"id": c["id"], "text": c["text"], "by": c["by"]["uniqueName"],
                              "created": c["created"], "mentions": identities.mentions(c["text"])}
                             for c in item.comments],
                "links": [{"rel": r["rel"], "url": r["url"],
                           "comment": r.get("attributes", {}).get("comment")}
                          for r in item.current.relations],
                "revisions": len(item.revisions)}

    def write_requests(self) -> list[Any]:
        """Requests that change state: WIQL and workitemsbatch are POSTs but only read."""
        return [r for r in super().write_requests() if not _READ_ONLY_POST.search(r.path)]

    # -- helpers for tests and the demo (changes made "by a person in the UI") -----------------
    def human_edit(self, item_id: int | str, fields: dict[str, Any], by: str = HUMAN) -> int:
        ops = [{"op": "add", "path": f"/fields/{k}", "value": v} for k, v in fields.items()]
        with self.lock:
            return self.store.update(int(item_id), None, ops, identity(by, self.store.users)).current.rev

    def human_comment(self, item_id: int | str, text: str, by: str = HUMAN) -> int:
        return self.human_edit(item_id, {"System.History": text}, by)

    def human_create(self, fields: dict[str, Any], *, project: str = "Support",
                     type_name: str = "Engagement Item", by: str = HUMAN) -> int:
        ops = [{"op": "add", "path": f"/fields/{k}", "value": v} for k, v in fields.items()]
        with self.lock:
            return self.store.create(project, type_name, ops, identity(by, self.store.users)).id

    # -- HTTP -----------------------------------------------------------------------------------
    def _route_table(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
        table = [
            ("OPTIONS", _ORG + r"/_apis/?", lambda m, p, b: api.options()),
            ("POST", _ORG + _PROJ + r"(?:/[^/]+)?" + _WIT + r"/wiql/?",
             lambda m, p, b: api.run_wiql(self.store, self._base(m), m["project"], p, b,
                                          self.wiql_cap, self._caller()["uniqueName"],
                                          self.wiql_honours_top)),
            ("POST", _ORG + _PROJ + _WIT + r"/workitemsbatch/?",
             lambda m, p, b: api.batch(self.store, self._base(m), m["project"], b)),
            ("POST", _ORG + _PROJ + _WIT + r"/workitems/\$(?P<type>[^/]+)",
             lambda m, p, b: api.create_item(self.store, self._base(m), m["project"], m["type"], p,
                                             b, self._caller())),
            ("GET", _ORG + r"(?:" + _PROJ + r")?" + _WIT + r"/workitems/(?P<id>\d+)",
             lambda m, p, b: api.get_item(self.store, self._base(m), m["project"], m["id"], p)),
            ("PATCH", _ORG + r"(?:" + _PROJ + r")?" + _WIT + r"/workitems/(?P<id>\d+)",
             lambda m, p, b: self._notify(m["id"], p, b, api.update_item(
                 self.store, self._base(m), m["project"], m["id"], p, b, self._caller()))),
            ("GET", _ORG + r"/_apis/identities/?",
             lambda m, p, b: identities.read_identities(self.store.users, p)),
            ("GET", _ORG + _PROJ + _WIT + r"/workitems/(?P<id>\d+)/comments/?",
             lambda m, p, b: api.comments(self.store, self._base(m), m["project"], m["id"], p)),
            ("POST", _ORG + _PROJ + _WIT + r"/workitems/(?P<id>\d+)/comments/?",
             lambda m, p, b: self._notify(m["id"], {}, identities.as_history(b), api.add_comment(
                 self.store, self._base(m), m["project"], m["id"], b, self._caller()))),
            ("GET", _ORG + _PROJ + _WIT + r"/reporting/workitemrevisions/?",
             lambda m, p, b: reporting.read_revisions(self.store, self._base(m), m["project"], p,
                                                      self.reporting_comment_refs)),
            ("GET", _ORG + _PROJ + _WIT + r"/workitemtypes/(?P<type>[^/]+)/states/?",
             lambda m, p, b: api.states(self.store, m["project"], m["type"])),
            ("GET", _ORG + _PROJ + _WIT + r"/workitemtypes/(?P<type>[^/]+)/fields(?:/(?P<field>[^/]+))?/?",
             lambda m, p, b: api.fields(self.store, self._base(m), m["project"], m["type"],
                                        m["field"], p)),
            ("GET", _ORG + _PROJ + _WIT + r"/workitemtypes/(?P<type>[^/]+)/?",
             lambda m, p, b: api.work_item_type(self.store, self._base(m), m["project"], m["type"])),
            ("GET", _ORG + _PROJ + _WIT + r"/classificationnodes/(?P<group>areas|iterations)(?:/(?P<path>.+))?",
             lambda m, p, b: api.areas(self.store, m["project"], m["group"], m["path"])),
        ]
        return [(method, re.compile(f"^{pattern}$", re.IGNORECASE), fn) for method, pattern, fn in table]

    def _notify(self, item_id: str, params: dict[str, str], body: Any, result: Any) -> Any:
        """Record the @mention notifications of an update that went through."""
        self.notifications += identities.notifications(item_id, params, body)
        return result

    def _base(self, match: re.Match[str]) -> str:
        return f"{request.host_url.rstrip('/')}/{match['org']}"

    def add_routes(self) -> None:
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]
        add_attachment_routes(self)
        self.app.add_url_rule("/<path:path>", "azure_devops", self._dispatch, methods=methods,
                              provide_automatic_options=False)
        self.app.after_request(self._rate_limit_headers)

    def _dispatch(self, path: str) -> Response:
        try:
            for method, pattern, handler in self.routes:
                match = pattern.match(request.path)
                if match is None or method != request.method:
                    continue
                if match["org"].lower() != self.store.organization.lower():
                    raise SimError(404, f"TF400898: The organization {match['org']} does not exist.",
                                   "HostNotFoundException")
                if not self._authorized():
                    return Response("TF400813: Resource not available for anonymous access. Client "
                                    "authentication required.", status=401, mimetype="text/plain",
                                    headers={"WWW-Authenticate": 'Basic realm="https://dev.azure.com/"'})
                self._check_preview(request.path)
                body = request.get_json(force=True, silent=True) if request.data else None
                with self.lock:
                    result = handler(match, request.args.to_dict(), body)
                return self._throttled(jsonify(result))
            raise SimError(404, f"The resource {request.method} {request.path} is not supported by "
                           "the simulator.", "ApiResourceNotFoundException")
        except SimError as exc:
            response = jsonify(exc.body())
            response.status_code = exc.status
            return response

    @staticmethod
    def _basic() -> tuple[str, str]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return "", ""
        try:
            user, _, token = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return "", ""
        return user, token

    def _authorized(self) -> bool:
        token = self._basic()[1]
        return bool(token) and (self.pat is None or token == self.pat)

    def _caller(self) -> dict[str, Any]:
        """The PAT's identity; a person can sign in with their email as the Basic user name
        (Azure DevOps ignores it; here it says who made a change, e.g. the demo's engineer)."""
        user = self._basic()[0]
        return identity(user, self.store.users) if user else self.service_user

    def _check_preview(self, path: str) -> None:
        """The Comments API and the reporting revisions stream are preview APIs (the SDK marks
        them "[Preview API]" and sends ``-preview``): Azure DevOps answers 400 when the api-version (in
        the query or, as the SDK sends it, in ``Accept``) lacks ``-preview``
        (learn.microsoft.com/azure/devops/integrate/concepts/rest-api-versioning: "Preview
        APIs ... you must opt in by appending -preview")."""
        if not self.profile.realistic or not _PREVIEW.search(path):
            return
        version = request.args.get("api-version") or _accept_version(request.headers.get("Accept"))
        if version and "-preview" not in version:
            raise SimError(400, f"VS403256: The requested REST API version of {version} is in "
                           "preview. Specify -preview to use it.",
                           "VssInvalidPreviewVersionException")

    def _throttled(self, response: Response) -> Response:
        """Azure DevOps delays a user over the rate-limit threshold before blocking: a 200 with
        ``Retry-After`` and the ``X-RateLimit-*`` headers (learn.microsoft.com/azure/devops/
        integrate/concepts/rate-limits: "Retry-After ... X-RateLimit-Resource, X-RateLimit-Delay,
        X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"); past the hard limit the
        base class answers 429 (TF400733). Realistic only, ``delay_after`` requests per
        (scaled) five-minute window, then each answer is delayed."""
        if not self.profile.realistic or not self.delay_after:
            return response
        with self.lock:
            window = self._delay_window
            if window is None or window.limit != self.delay_after:
                self._delay_window = Window(self.delay_after, self.profile.seconds(300))
            wait = self._delay_window.take()
            reset = time.time() + self.profile.seconds(300)
        if wait:
            response.headers["Retry-After"] = retry_after_text(wait, self.profile)
            response.headers["X-RateLimit-Resource"] = "Core"
            response.headers["X-RateLimit-Delay"] = f"{wait:.3f}"
            response.headers["X-RateLimit-Limit"] = str(self.delay_after)
            response.headers["X-RateLimit-Remaining"] = "0"
            response.headers["X-RateLimit-Reset"] = str(int(reset))
        return response

    # -- rate limits: Azure DevOps' headers and TF400733 ------------------------------------------
    def _rate_limit_headers(self, response: Response) -> Response:
        limit = self.faults.rate_limit_per_minute
        if limit and not request.path.startswith("/_sim/"):
            with self.lock:
                window = list(self._window)
            oldest = min(window) if window else time.time()
            response.headers["X-RateLimit-Resource"] = "Core"
            response.headers["X-RateLimit-Limit"] = str(limit)
            response.headers["X-RateLimit-Remaining"] = str(max(0, limit - len(window)))
            response.headers["X-RateLimit-Reset"] = str(int(oldest + 60))
        return response

    def _fault_response(self, status: int, retry_after: float | None) -> Response:
        if status == 429:
            error = SimError(429, "TF400733: The request has been canceled: Request was blocked due "
                             "to exceeding usage of resource 'Core' in namespace 'User'.",
                             "RequestBlockedException")
        else:
            error = SimError(status, f"Injected HTTP {status} (simulated fault).",
                             "SimulatedFaultException")
        response = jsonify(error.body())
        response.status_code = status
        if retry_after is not None:
            response.headers["Retry-After"] = str(max(0, int(round(retry_after))))
        if status == 429:
            response.headers["X-RateLimit-Resource"] = "Core"
            response.headers["X-RateLimit-Remaining"] = "0"
            limit = self.faults.rate_limit_per_minute
            if limit:
                response.headers["X-RateLimit-Limit"] = str(limit)
            response.headers["X-RateLimit-Reset"] = str(int(time.time() + (retry_after or 0)))
        return response

    def now_text(self) -> str:
        with self.lock:
            return format_date(self.store.now())


def _accept_version(accept: str | None) -> str | None:
    """The api-version the SDK puts in ``Accept`` (``application/json;api-version=7.1-preview.4``)."""
    for part in (accept or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "api-version":
            return value
    return None


def connector_config(sim: AzureDevOpsSimulator, **overrides: Any) -> dict[str, Any]:
    """The tracker config section and environment for a connector pointed at ``sim``.

    Returns ``{"config": {...}, "env": {"AZURE_DEVOPS_PAT": ...}}``; ``overrides`` replace
    config keys (e.g. ``mapping=``, ``start_at=``, ``pat_env=``).
    """
    if sim.base_url is None:
        raise RuntimeError("start the simulator first")
    project = next(iter(sim.store.projects.values())).name
    config = {"kind": "azure_devops", "base_url": f"{sim.base_url}/{sim.store.organization}",
              "mapping": "azure_devops", "project": project, "work_item_type": "Engagement Item",
              "pat_env": "AZURE_DEVOPS_PAT", "start_at": "epoch", "max_wait_seconds": 10.0}
    config.update(overrides)
    return {"config": config, "env": {config["pat_env"]: sim.pat or DEFAULT_PAT}}
