"""A local Jira Cloud (REST API v2) for tests and the demo (issue 4).

Routes: serverInfo (``deploymentType: Cloud``), myself, field, priority, status, project (+
statuses), create metadata, user search, the enhanced search ``/search/jql`` (GET and POST,
``nextPageToken`` paging, the JQL subset in ``jira_jql``), issues (create, get, edit),
workflow transitions, comments (``sd.public.comment`` makes a comment internal in a service
project), issue properties, remote links (upserted by globalId) and
``/rest/applinks/latest/listApplicationlinks``. Basic auth: email + API token.
Rate limits: ``faults.rate_limit_per_minute`` (base class) answered as Jira does: 429 with
``Retry-After`` (seconds), ``X-RateLimit-Reset`` (ISO 8601), ``RateLimit-Reason``.
State lives in ``jira_site`` (configuration), ``jira_state`` (issues), ``jira_fixture``
(seeding, human edits, snapshot); JSON shapes in ``jira_render``.
"""
from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flask import Response, g, jsonify, request

from simulators.jira_attachments import JiraFiles
from simulators.jira_attachments import add_routes as add_attachment_routes
from simulators.base import Faults, Simulator
from simulators.jira_fixture import human_edit, seed_issue, snapshot
from simulators.jira_index import SearchIndex, move_issue
from simulators.jira_control import add_control_routes
from simulators.jira_routes import add_routes
from simulators.jira_site import Site
from simulators.jira_state import FieldErrors, JiraStore, SimIssue
from simulators.jira_watchers import add_watcher_routes, mentions

DEFAULT_FIXTURE = Path(__file__).with_name("fixtures") / "jira.json"
DEFAULT_EMAIL = "tiersync-bot@engineering.example.com"
DEFAULT_TOKEN = "sim-jira-api-token"
READ_ONLY_POST = re.compile(r"/rest/api/\d/(search/jql|issue/bulkfetch)/?$")
SITE_KEYS = ("site", "users", "statuses", "workflow", "priorities", "default_priority", "fields",
             "projects")


def load_default_fixture() -> dict[str, Any]:
    return json.loads(DEFAULT_FIXTURE.read_text(encoding="utf-8"))


class JiraSimulator(Simulator):
    name = "jira"

    def __init__(self, faults: Faults | None = None, *, fixture: dict[str, Any] | None = None,
                 email: str | None = None, token: str | None = None,
                 index_lag_seconds: float | None = None, time_scale: float = 1.0):
        """``index_lag_seconds``: how long a change takes to become searchable (default: the
        fixture's ``site.index_lag_seconds``, 2 s); ``time_scale`` multiplies it (benchmarks
        shrink it; tests of the lag itself run at 1.0)."""
        self.email = email  # None: any non-empty email and token are accepted
        self.token = token
        self.index_lag_seconds = index_lag_seconds
        self.time_scale = time_scale
        self.create_reply_loss = 0.0  # fraction of issue creates processed, then the reply lost
        self._loss_rng = random.Random(0)
        self._config = load_default_fixture()
        super().__init__(faults)
        self.app.before_request(self._authenticate)  # after the base class's recording/faults
        self.app.before_request(self._maybe_lose_create_reply)
        self.app.after_request(self._rate_headers)
        if fixture is not None:
            self.seed(fixture)
        else:
            self.seed({"issues": self._config.get("issues", [])})

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        self.site = Site(self._config)
        self.store = JiraStore(self.site)
        self.files = JiraFiles()  # attachments (simulators/jira_attachments.py)
        self.watchers: dict[str, list[str]] = {}  # issue key -> accountIds (jira_watchers)
        self.index = SearchIndex(self.effective_index_lag())

    def effective_index_lag(self) -> float:
        lag = self.site.index_lag_seconds if self.index_lag_seconds is None else self.index_lag_seconds
        return lag * self.time_scale

    def set_index_lag(self, seconds: float | None = None, time_scale: float | None = None) -> float:
        """Change the index lag and/or the time scale while running; returns the lag in use."""
        with self.lock:
            if seconds is not None:
                self.index_lag_seconds = float(seconds)
            if time_scale is not None:
                self.time_scale = float(time_scale)
            self.index.set_lag(self.effective_index_lag())
            return self.effective_index_lag()

    def settle_seconds(self) -> float:
        """Also the search index lag: seconds until the last change of every issue is searchable."""
        with self.lock:
            now = datetime.now(timezone.utc)
            lag = max((self.index.lag - (now - i.updated)).total_seconds()
                      for i in self.store.issues.values()) if self.store.issues else 0.0
        return max(super().settle_seconds(), lag)

    def settle_index(self) -> None:
        """Make every change so far searchable now, as if the index lag had passed (tests use
        it instead of sleeping)."""
        with self.lock:
            self.index.settle(self.store.issues.values())

    def move_issue(self, ref: str, project: str, issuetype: str | None = None) -> str:
        """Move an issue to another project (new key, same id; the old key still resolves);
        returns the new key."""
        with self.lock:
            return move_issue(self.store, ref, project, issuetype).key

    def seed(self, fixture: dict[str, Any]) -> None:
        """Site keys (``projects``, ``fields``, ``workflow``...) replace the configuration and
        empty the issues; ``issues`` are then added (flat view, see ``jira_fixture``)."""
        with self.lock:
            if any(key in fixture for key in SITE_KEYS):
                self._config = {**self._config, **{k: v for k, v in fixture.items() if k in SITE_KEYS}}
                self.reset()
            for spec in fixture.get("issues") or []:
                seed_issue(self.store, spec)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            snap = snapshot(self.store)
        for issue in snap["issues"]:
            issue["watchers"] = list(self.watchers.get(issue["key"], []))
            for comment in issue["comments"]:
                comment["mentions"] = mentions(comment["body"])
        return snap

    def write_requests(self) -> list[Any]:
        """Requests that change state: the JQL search and the bulk issue read are POSTs that
        only read (spec: ``searchAndReconsileIssuesUsingJqlPost``, ``bulkFetchIssues``)."""
        return [r for r in super().write_requests() if not READ_ONLY_POST.search(r.path)]

    # -- helpers for tests and the demo (changes "made by a person in the UI") -----------------
    def issue(self, key: str) -> SimIssue:
        found = self.store.find(key)
        if found is None:
            raise KeyError(f"no issue {key}")
        return found

    def human_edit(self, key: str, fields: dict[str, Any]) -> str:
        """Change fields (flat view; ``status`` by name, set directly); returns the new
        ``updated`` as Jira renders it. Always makes a new version, like saving in the UI."""
        with self.lock:
            issue = self.issue(key)
            human_edit(self.store, issue, fields)
            return self.site.time(issue.updated)

    def human_comment(self, key: str, body: str, *, internal: bool = False,
                      author: str | None = None) -> str:
        with self.lock:
            issue = self.issue(key)
            account = (self.site.user(email=author) or {}).get("accountId") if author else None
            props = [{"key": "sd.public.comment", "value": {"internal": True}}] if internal else []
            return str(self.store.add_comment(issue, body, account, props)["id"])

    def human_create(self, fields: dict[str, Any], **spec: Any) -> str:
        with self.lock:
            return seed_issue(self.store, {"fields": fields, **spec}).key

    # -- auth, errors, headers -------------------------------------------------------------------
    def _authenticate(self) -> Response | None:
        if self.fault_exempt.match(request.path):
            return None
        auth = request.authorization
        user, secret = (auth.username, auth.password) if auth else (None, None)
        accepted = bool(user and secret) if self.email is None else \
            (user == self.email and secret == (self.token or DEFAULT_TOKEN))
        if not accepted:
            return Response("Client must be authenticated to access this resource.", status=401,
                            mimetype="text/plain",
                            headers={"WWW-Authenticate": 'Basic realm="protected-area"'})
        with self.lock:
            g.jira_user = self.site.user_for_login(user)
        return None

    def set_create_reply_loss(self, rate: float, seed: int = 0) -> None:
        """Lose the reply of ``rate`` of the issue creates after Jira made the issue (the
        base class's ``drop_after_rate`` loses replies of every request alike)."""
        with self.lock:
            self.create_reply_loss, self._loss_rng = float(rate), random.Random(seed)

    def _maybe_lose_create_reply(self) -> None:
        if request.method == "POST" and request.path == "/rest/api/2/issue" and self.create_reply_loss:
            with self.lock:
                if self._loss_rng.random() < self.create_reply_loss:
                    g.drop_after = True  # the base class drops the connection after the reply

    def _fault_response(self, status: int, retry_after: float | None) -> Response:
        message = "Rate limit exceeded." if status == 429 else f"Injected HTTP {status}."
        response = jsonify({"errorMessages": [message], "errors": {}})
        response.status_code = status
        if retry_after is not None:
            seconds = max(0, int(round(retry_after)))
            response.headers["Retry-After"] = str(seconds)
            if status == 429:
                reset = datetime.now(timezone.utc) + timedelta(seconds=seconds)
                response.headers["X-RateLimit-Reset"] = reset.strftime("%Y-%m-%dT%H:%MZ")
        if status == 429:
            response.headers["RateLimit-Reason"] = "jira-burst-based"
            if self.faults.rate_limit_per_minute:
                response.headers["X-RateLimit-Limit"] = str(self.faults.rate_limit_per_minute)
                response.headers["X-RateLimit-Remaining"] = "0"
        return response

    def _rate_headers(self, response: Response) -> Response:
        limit = self.faults.rate_limit_per_minute
        if limit and response.status_code != 429 and not self.fault_exempt.match(request.path):
            with self.lock:
                used = len(self._window)
            response.headers["X-RateLimit-Limit"] = str(limit)
            response.headers["X-RateLimit-Remaining"] = str(max(0, limit - used))
        return response

    def add_routes(self) -> None:
        add_routes(self)
        add_attachment_routes(self)
        add_watcher_routes(self)
        add_control_routes(self)


def error(status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None) -> Response:
    """Jira's ErrorCollection."""
    response = jsonify({"errorMessages": messages or [], "errors": errors or {}})
    response.status_code = status
    return response


def field_errors(exc: FieldErrors) -> Response:
    return error(400, exc.messages, exc.errors)


def connector_config(sim: JiraSimulator, **overrides: Any) -> dict[str, Any]:
    """The tracker section and the environment for a connector pointed at ``sim`` (started).

    Returns ``{"config": {...}, "env": {...}}``: ``config`` is the ``trackers.<name>`` section
    (kind, base_url, mapping, email_env, token_env, project, issue_type, start_at, ...),
    ``env`` the variables to set. ``overrides`` replace config keys (e.g. ``project="SUP",
    service_management=True``).
    """
    if sim.base_url is None:
        raise RuntimeError("start the simulator first (sim.start() or `with sim:`)")
    config = {"kind": "jira", "base_url": sim.base_url, "mapping": "jira",
              "email_env": "JIRA_EMAIL", "token_env": "JIRA_API_TOKEN", "project": "ENG",
              "issue_type": "Escalation", "start_at": "epoch", "max_wait_seconds": 10.0,
              # the idempotency lookup trusts "not found" once the simulator's index caught up
              "search_lag_seconds": round(sim.effective_index_lag() + 0.5, 3),
              **overrides}
    env = {config["email_env"]: sim.email or DEFAULT_EMAIL,
           config["token_env"]: sim.token or DEFAULT_TOKEN}
    return {"config": config, "env": env}
