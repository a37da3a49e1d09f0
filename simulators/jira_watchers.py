"""Watchers of a simulated Jira issue (Jira Cloud REST API v2, "Issue watchers"):

- ``GET /rest/api/2/issue/{key}/watchers``: ``{self, isWatching, watchCount, watchers: [user]}``
- ``POST`` with the accountId as a JSON string adds a watcher (204; an unknown accountId is
  400, as Jira answers "The user ... does not exist"); adding someone twice changes nothing
- ``DELETE ?accountId=...`` removes one (204)
Watching does not change the issue's ``updated`` (it is not an issue edit). Mentions are kept in
the comment body as written (``[~accountid:...]``); the snapshot lists who each comment mentions.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from flask import Response, g, jsonify, request

if TYPE_CHECKING:
    from simulators.jira import JiraSimulator

API = "/rest/api/2"
MENTION = re.compile(r"\[~accountid:([^\]\s]+)\]")


def mentions(body: Any) -> list[str]:
    return MENTION.findall(body) if isinstance(body, str) else []


def add_watcher_routes(sim: "JiraSimulator") -> None:
    from simulators.jira import error

    @sim.app.route(f"{API}/issue/<ref>/watchers", methods=["GET", "POST", "DELETE"])
    def watchers(ref: str) -> Response:
        with sim.lock:
            issue = sim.store.find(ref)
            if issue is None:
                return error(404, ["Issue does not exist or you do not have permission to see it."])
            watching = sim.watchers.setdefault(issue.key, [])
            if request.method == "GET":
                return _list(sim, issue.key, watching)
            account = _account(request.get_data(as_text=True)) if request.method == "POST" \
                else request.args.get("accountId")
            if not any(u["accountId"] == account for u in sim.site.users):
                return error(400, [f"The user \"{account}\" does not exist."])
            if request.method == "POST" and account not in watching:
                watching.append(account)
            if request.method == "DELETE":
                watching[:] = [a for a in watching if a != account]
            return Response(status=204)


def _account(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _list(sim: "JiraSimulator", key: str, watching: list[str]) -> Response:
    base = request.host_url.rstrip("/")
    users = [u for account in watching for u in sim.site.users if u["accountId"] == account]
    me = (getattr(g, "jira_user", None) or {}).get("accountId")
    return jsonify({"self": f"{base}{API}/issue/{key}/watchers", "isWatching": me in watching,
                    "watchCount": len(watching),
                    "watchers": [sim.site.user_json(u, base) for u in users]})
