"""A local Zendesk Support API for tests and the demo (issue 4).

Routes (``.json`` optional, as on Zendesk): tickets (create, show, show_many, list and lookup by
``external_id``, update with ``safe_update``, ``update_many`` + job statuses), the cursor-based
incremental ticket export, comments, audits, tags, ticket fields, users (incl. ``me``) and
organizations, with sideloading of users/organizations. Basic auth ``{email}/token:{token}``.
Rate limits: the base class's ``faults.rate_limit_per_minute`` plus Zendesk's headers
(``X-Rate-Limit``, ``X-Rate-Limit-Remaining``, ``Retry-After`` in seconds).

Realistic profile (simulators/profile.py; windows scaled by its ``time_scale``): ``updated_at``
in whole seconds (simulators/zendesk_state.py), the incremental export leaves out the last minute
(simulators/zendesk_render.py), and the export and Update Ticket limits and the export for admins
only (simulators/zendesk_limits.py), each citing its developer.zendesk.com page.
``export_limit_per_minute`` / ``update_limits`` override the export and Update Ticket limits
(0 / None: off).
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from functools import wraps
from pathlib import Path
from typing import Any, Callable

from flask import Response, g, jsonify, request

from simulators import zendesk_limits as limits
from simulators.base import Faults, Simulator
from simulators.profile import REALISTIC, Profile, Window
from simulators.zendesk_render import (EXPORT_MAX_PAGE, cbp_page, export_page, job_json, lookup,
                                       many, seed, sideloads, snapshot, ticket_fields, ticket_json,
                                       ui_body)
from simulators.zendesk_attachments import ZendeskFiles
from simulators.zendesk_attachments import add_routes as attachment_routes
from simulators.zendesk_state import ZendeskState
from simulators.zendesk_events import ticket_events_page
from simulators.zendesk_values import ApiError, iso

DEFAULT_FIXTURE = Path(__file__).with_name("fixtures") / "zendesk.json"
DEFAULT_EMAIL = "tiersync@tier1.example.com"
DEFAULT_TOKEN = "sim-zendesk-token"
UPDATE_MANY_LIMIT = 100
EXPORT_HOLD_BACK = limits.EXPORT_HOLD_BACK


def load_default_fixture() -> dict[str, Any]:
    return json.loads(DEFAULT_FIXTURE.read_text(encoding="utf-8"))


class ZendeskSimulator(Simulator):
    name = "zendesk"

    def __init__(self, faults: Faults | None = None, *, fixture: dict[str, Any] | None = None,
                 email: str | None = None, token: str | None = None,
                 profile: Profile | None = None):
        self.email = email  # None: any non-empty credentials are accepted
        self.token = token
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.export_page_size = EXPORT_MAX_PAGE
        self.export_limit_per_minute: int | None = None  # None: the profile's (10 / off)
        self.update_limits: tuple[int, int] | None = None  # (per account/min, per ticket/10 min)
        self.job_polls_before_complete = 1  # a job reports "queued" this many times first
        super().__init__(faults, profile)
        self.seed(load_default_fixture() if fixture is None else fixture)

    # -- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        profile = getattr(self, "profile", None) or REALISTIC
        quantum = timedelta(seconds=max(0.001, profile.seconds(1))) if profile.realistic \
            else timedelta(milliseconds=1)
        self.state = ZendeskState(lambda: self.clock(), quantum)
        self.state.on_change = self._changed
        self.jobs: dict[str, dict[str, Any]] = {}
        self._export_window: Window | None = None
        self._update_windows: dict[Any, Window] = {}
        self.files = ZendeskFiles(self)  # uploads and attachments (simulators/zendesk_attachments.py)

    def set_profile(self, **changes: Any) -> Profile:
        profile = super().set_profile(**changes)
        with self.lock:
            self.state.quantum = timedelta(seconds=max(0.001, profile.seconds(1))) \
                if profile.realistic else timedelta(milliseconds=1)
            self._export_window, self._update_windows = None, {}
        return profile

    def _changed(self) -> None:
        if self.profile.realistic:
            self.changes_visible_after(EXPORT_HOLD_BACK + 1)  # + one stamp's precision

    def seed(self, fixture: dict[str, Any]) -> None:
        with self.lock:
            seed(self.state, fixture)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return snapshot(self.state)

    def edit_ticket(self, ticket_id: int | str, fields: dict[str, Any], *, comment: str | None = None,
                    public: bool = True, author_email: str | None = None) -> None:
        """Change a ticket as an agent in the Zendesk UI would (flat keys, e.g.
        ``custom_fields.360010000002``); always makes a new version."""
        body = ui_body(fields, comment, public)
        with self.lock:
            author = self.state.user_by_email(author_email) or self._first_agent()
            self.state.update_ticket(int(ticket_id), body, author, channel="web")

    def create_ticket(self, ticket: dict[str, Any], *, author_email: str | None = None) -> int:
        """Create a ticket as a person would (Zendesk ticket attributes, ``comment`` or
        ``description``); returns its id."""
        with self.lock:
            author = self.state.user_by_email(author_email) or self._first_agent()
            seed(self.state, {"tickets": [{**ticket, "submitter_email": author.get("email")}]})
            return max(self.state.tickets)

    def _first_agent(self) -> dict[str, Any]:
        people = sorted(self.state.users.values(), key=lambda u: u.get("role") != "agent")
        agents = [u for u in people if u.get("role") in ("agent", "admin")]  # agents before admins
        return agents[0] if agents else self.state.acting_user(None)

    # -- plumbing --------------------------------------------------------------------------------
    def _base(self) -> str:
        return request.host_url.rstrip("/")

    def _route(self, rule: str, methods: list[str]) -> Callable[[Callable[..., Any]], Any]:
        """Register ``rule`` and ``rule.json`` behind auth, JSON errors and the lock."""
        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(view)
            def wrapped(**kwargs: Any) -> Any:
                denied = self._authenticate()
                if denied is not None:
                    return denied
                try:
                    with self.lock:
                        return view(**kwargs)
                except ApiError as exc:
                    return jsonify(exc.body), exc.status
            name = f"zd_{view.__name__}"
            self.app.add_url_rule(rule, name, wrapped, methods=methods)
            self.app.add_url_rule(f"{rule}.json", f"{name}_json", wrapped, methods=methods)
            return wrapped
        return decorate

    def _authenticate(self) -> Response | None:
        auth = request.authorization
        user, password = (auth.username, auth.password) if auth else ("", "")
        ok = bool(user) and bool(password)
        if self.email is not None:
            ok = user == f"{self.email}/token" and password == self.token
        if not ok:
            response = jsonify({"error": "Couldn't authenticate you"})
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Basic realm="Web Password"'
            return response
        g.zd_user_email = user.removesuffix("/token")
        return None

    def _actor(self) -> dict[str, Any]:
        return self.state.acting_user(getattr(g, "zd_user_email", None))

    def _headers(self, response: Response) -> Response:
        limit = self.faults.rate_limit_per_minute
        if limit and request.path.startswith("/api/"):
            with self.lock:
                used = len([t for t in self._window if time.time() - t < 60])
            response.headers["X-Rate-Limit"] = str(limit)
            response.headers["X-Rate-Limit-Remaining"] = str(max(0, limit - used))
        return response

    # -- routes ----------------------------------------------------------------------------------
    def add_routes(self) -> None:
        self.app.after_request(self._headers)
        route = self._route
        attachment_routes(self, self.files)
        v2 = "/api/v2"

        @route(f"{v2}/tickets", ["GET", "POST"])
        def tickets() -> Any:
            if request.method == "POST":
                body = request.get_json(force=True, silent=True) or {}
                self.files.resolve((body.get("ticket") or {}).get("comment"))
                row, audit = self.state.create_ticket(body.get("ticket") or {}, self._actor())
                tid = audit["ticket_id"]
                ticket = ticket_json(self.state, tid, row, self._base())
                response = jsonify({"ticket": ticket, "audit": audit})
                response.headers["Location"] = ticket["url"]
                return response, 201
            wanted = request.args.get("external_id")
            found = [ticket_json(self.state, tid, row, self._base())
                     for tid, row in sorted(self.state.tickets.items())
                     if wanted is None or row.data.get("external_id") == wanted]
            page = cbp_page(found, "tickets", f"{self._base()}{v2}/tickets.json", request.args.to_dict())
            return jsonify({**page, **sideloads(self.state, page["tickets"], request.args.get("include"))})

        @route(f"{v2}/tickets/<int:ticket_id>", ["GET", "PUT"])
        def ticket(ticket_id: int) -> Any:
            if request.method == "PUT":
                limited = limits.update_limited(self, ticket_id)
                if limited is not None:
                    return limited
                body = request.get_json(force=True, silent=True) or {}
                self.files.resolve((body.get("ticket") or {}).get("comment"))
                row, audit = self.state.update_ticket(ticket_id, body.get("ticket") or {}, self._actor())
                return jsonify({"ticket": ticket_json(self.state, ticket_id, row, self._base()),
                                "audit": audit})
            one = ticket_json(self.state, ticket_id, self.state.ticket(ticket_id), self._base())
            return jsonify({"ticket": one, **sideloads(self.state, [one], request.args.get("include"))})

        @route(f"{v2}/tickets/show_many", ["GET"])
        def show_many() -> Any:
            ids = [int(i) for i in request.args.get("ids", "").split(",") if i.strip().isdigit()]
            found = [ticket_json(self.state, i, self.state.tickets[i], self._base())
                     for i in ids[:100] if i in self.state.tickets]
            return jsonify({"tickets": found, "next_page": None, "previous_page": None,
                            "count": len(found), **sideloads(self.state, found, request.args.get("include"))})

        @route(f"{v2}/tickets/update_many", ["PUT"])
        def update_many() -> Any:
            return jsonify({"job_status": job_json(self._start_job(), self._base())})

        @route(f"{v2}/job_statuses/<job_id>", ["GET"])
        def job_status(job_id: str) -> Any:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404, "RecordNotFound", "Not found")
            job["polls_left"] -= 1
            job["status"] = "working"
            return jsonify({"job_status": job_json(job, self._base())})

        @route(f"{v2}/incremental/tickets/cursor", ["GET"])
        def export() -> Any:
            refused = limits.export_refused(self)
            if refused is not None:
                return refused
            limited = limits.export_limited(self)
            if limited is not None:
                return limited
            args = request.args
            per_page = min(int(args.get("per_page") or self.export_page_size), EXPORT_MAX_PAGE)
            hold_back = self.profile.seconds(EXPORT_HOLD_BACK) if self.profile.realistic else 0.0
            return jsonify(export_page(self.state, self._base(), start_time=args.get("start_time"),
                                       cursor=args.get("cursor"), per_page=per_page,
                                       include=args.get("include"), hold_back=hold_back))

        @route(f"{v2}/incremental/ticket_events", ["GET"])
        def ticket_events() -> Any:
            refused = limits.export_refused(self)
            limited = limits.export_limited(self) if refused is None else None
            if refused is not None or limited is not None:
                return refused if refused is not None else limited
            hold_back = self.profile.seconds(EXPORT_HOLD_BACK) if self.profile.realistic else 0.0
            return jsonify(ticket_events_page(self.state, self._base(),
                                              start_time=request.args.get("start_time"),
                                              include=request.args.get("include"), hold_back=hold_back))

        @route(f"{v2}/tickets/<int:ticket_id>/comments", ["GET"])
        def comments(ticket_id: int) -> Any:
            items = list(self.state.ticket(ticket_id).comments)
            if request.args.get("sort") == "-created_at" or request.args.get("sort_order") == "desc":
                items.reverse()
            url = f"{self._base()}{v2}/tickets/{ticket_id}/comments.json"
            return jsonify(cbp_page(items, "comments", url, request.args.to_dict()))

        @route(f"{v2}/tickets/<int:ticket_id>/audits", ["GET"])
        def audits(ticket_id: int) -> Any:
            url = f"{self._base()}{v2}/tickets/{ticket_id}/audits.json"
            return jsonify(cbp_page(list(self.state.ticket(ticket_id).audits), "audits", url,
                                    request.args.to_dict()))

        @route(f"{v2}/tickets/<int:ticket_id>/tags", ["GET", "PUT", "POST", "DELETE"])
        def tags(ticket_id: int) -> Any:
            row = self.state.ticket(ticket_id)
            if request.method != "GET":
                given = (request.get_json(force=True, silent=True) or {}).get("tags") or []
                current = list(row.data["tags"])
                new = {"POST": given, "PUT": current + given,
                       "DELETE": [t for t in current if t not in given]}[request.method]
                self.state.update_ticket(ticket_id, {"tags": new}, self._actor())
            return jsonify({"tags": list(row.data["tags"])})

        @route(f"{v2}/ticket_fields", ["GET"])
        def fields() -> Any:
            items = ticket_fields(self.state, self._base())
            return jsonify({"ticket_fields": items, "next_page": None, "previous_page": None,
                            "count": len(items)})

        @route(f"{v2}/users/me", ["GET"])
        def me() -> Any:
            return jsonify({"user": self._actor()})

        @route(f"{v2}/users/<int:user_id>", ["GET"])
        def user(user_id: int) -> Any:
            return jsonify({"user": lookup(self.state.users, user_id)})

        @route(f"{v2}/users/search", ["GET"])
        def users_search() -> Any:
            # Search Users (developer.zendesk.com/api-reference/ticketing/users/users/#search-users):
            # ``query`` matches an email exactly or part of a name; a user the account removed
            # is not found (suspended and inactive users are, with their flags)
            query = (request.args.get("query") or "").strip().lower().removeprefix("email:")
            found = [u for u in self.state.users.values() if query and (
                str(u.get("email") or "").lower() == query or query in str(u.get("name") or "").lower())]
            return jsonify({"users": found, "next_page": None, "previous_page": None,
                            "count": len(found)})

        @route(f"{v2}/users/show_many", ["GET"])
        def users_many() -> Any:
            return jsonify({"users": many(self.state.users, request.args.get("ids")), "next_page": None})

        @route(f"{v2}/organizations/<int:org_id>", ["GET"])
        def organization(org_id: int) -> Any:
            return jsonify({"organization": lookup(self.state.organizations, org_id)})

        @route(f"{v2}/organizations/show_many", ["GET"])
        def organizations_many() -> Any:
            return jsonify({"organizations": many(self.state.organizations, request.args.get("ids")),
                            "next_page": None})

    def _start_job(self) -> dict[str, Any]:
        """Apply an update_many at once; its job reports the per-ticket results when polled."""
        body = request.get_json(force=True, silent=True) or {}
        if "ids" in request.args:
            shared = body.get("ticket") or {}
            items = [{**shared, "id": int(i)} for i in request.args["ids"].split(",") if i.strip()]
        else:
            items = list(body.get("tickets") or [])
        if len(items) > UPDATE_MANY_LIMIT:
            raise ApiError(400, "TooManyValues", f"You can only update up to {UPDATE_MANY_LIMIT} "
                           f"tickets at once, got {len(items)}")
        results = self.state.update_many(items, self._actor())
        job = {"id": uuid.uuid4().hex, "total": len(items), "status": "queued", "results": results,
               "polls_left": self.job_polls_before_complete + 1, "finished_at": iso(self.clock())}
        self.jobs[job["id"]] = job
        return job


def connector_config(sim: ZendeskSimulator, **overrides: Any) -> dict[str, Any]:
    """The tracker section and the environment for a connector pointed at ``sim`` (started).

    Returns ``{"config": {...}, "env": {...}}``: ``config`` is the ``trackers.<name>`` section
    (kind, base_url, mapping, email_env, token_env, start_at, ...), ``env`` the variables to set.
    """
    if sim.base_url is None:
        raise RuntimeError("start the simulator first (sim.start() or `with sim:`)")
    config = {"kind": "zendesk", "base_url": sim.base_url, "mapping": "zendesk",
              "email_env": "ZENDESK_EMAIL", "token_env": "ZENDESK_TOKEN", "start_at": "epoch",
              "max_wait_seconds": 10.0, "job_poll_seconds": 0.05, **overrides}
    env = {config["email_env"]: sim.email or DEFAULT_EMAIL,
           config["token_env"]: sim.token or DEFAULT_TOKEN}
    return {"config": config, "env": env}
