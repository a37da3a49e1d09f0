"""Simulator control endpoints of the Jira simulator (never faulted, no auth: ``/_sim/``).

- ``POST /_sim/jira/move`` ``{"issue": "ENG-3", "project": "SUP", "issuetype"?: "Escalation"}``
  moves an issue to another project as a person would in the UI (``jira_index.move_issue``);
  answers ``{"id", "key", "old_key"}``.
- ``GET /_sim/jira/index`` → ``{"lag_seconds", "time_scale"}``; ``POST`` with ``lag_seconds``
  and/or ``time_scale`` changes them, with ``"settle": true`` makes every change searchable now.
- ``POST /_sim/jira/create-reply-loss`` ``{"rate": 0.05, "seed"?: 1}``: that fraction of issue
  creates is made, then the connection dropped before the reply (a lost reply).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Response, jsonify, request

from simulators.jira_state import FieldErrors

if TYPE_CHECKING:
    from simulators.jira import JiraSimulator


def add_control_routes(sim: "JiraSimulator") -> None:
    _move_route(sim)
    _index_routes(sim)


def _move_route(sim: "JiraSimulator") -> None:
    @sim.app.post("/_sim/jira/move")
    def _move() -> Response:
        body = request.get_json(force=True, silent=True) or {}
        if not body.get("issue") or not body.get("project"):
            return _bad("give 'issue' (id or key) and 'project' (key)")
        with sim.lock:
            issue = sim.store.find(str(body["issue"]))
            if issue is None:
                return _bad(f"no issue {body['issue']}", 404)
            old_key = issue.key
            try:
                new_key = sim.move_issue(str(body["issue"]), str(body["project"]), body.get("issuetype"))
            except FieldErrors as exc:
                return _bad(str(exc))
            return jsonify({"id": str(issue.id), "key": new_key, "old_key": old_key})


def _index_routes(sim: "JiraSimulator") -> None:
    app = sim.app

    @app.get("/_sim/jira/index")
    def _get_index() -> Response:
        return jsonify(_index_state(sim))

    @app.post("/_sim/jira/index")
    def _post_index() -> Response:
        body = request.get_json(force=True, silent=True) or {}
        try:
            sim.set_index_lag(_number(body.get("lag_seconds")), _number(body.get("time_scale")))
        except (TypeError, ValueError) as exc:
            return _bad(f"lag_seconds / time_scale must be numbers: {exc}")
        if body.get("settle"):
            sim.settle_index()
        return jsonify(_index_state(sim))


    @app.post("/_sim/jira/create-reply-loss")
    def _post_reply_loss() -> Response:
        body = request.get_json(force=True, silent=True) or {}
        try:
            sim.set_create_reply_loss(float(body.get("rate", 0.0)), int(body.get("seed", 0)))
        except (TypeError, ValueError) as exc:
            return _bad(f"rate must be a number and seed an integer: {exc}")
        return jsonify({"rate": sim.create_reply_loss})


def _index_state(sim: "JiraSimulator") -> dict[str, float]:
    with sim.lock:
        return {"lag_seconds": sim.effective_index_lag(), "time_scale": sim.time_scale}


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _bad(message: str, status: int = 400) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response
