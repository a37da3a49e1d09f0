"""Jira issue attachments in the simulator.

- ``POST /rest/api/2/issue/{id}/attachments``: ``multipart/form-data``, every part named
  ``file``; without ``X-Atlassian-Token: no-check`` Jira blocks it (403, "XSRF check failed":
  "Add attachment", developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-
  attachments); a part over the site's upload limit: 413; attachments switched off: 403.
  Answers the list of new attachments; the issue's ``updated`` moves on.
- ``GET /rest/api/2/attachment/meta`` (``enabled``, ``uploadLimit``), ``GET /attachment/{id}``,
  ``GET /attachment/content/{id}`` (the bytes, streamed).
- Parts are streamed to disk by werkzeug's form parser and the simulator's blob store
  (simulators/blobs.py), never held whole in memory.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Response, g, jsonify, request

from simulators.blobs import Blobs, TooLarge
from simulators.jira_render import attachment_json

if TYPE_CHECKING:
    from simulators.jira import JiraSimulator

API = "/rest/api/2"
UPLOAD_LIMIT = 10 * 1024 * 1024  # the site setting's default (admins change it: "Configure file attachments")


class JiraFiles:
    def __init__(self) -> None:
        self.blobs = Blobs()
        self.enabled = True
        self.upload_limit = UPLOAD_LIMIT
        self.by_id: dict[str, dict[str, Any]] = {}
        self._next = 10000


def _base() -> str:
    return request.host_url.rstrip("/")


def add_routes(sim: "JiraSimulator") -> None:
    _upload_route(sim)
    _read_routes(sim)


def _upload_route(sim: "JiraSimulator") -> None:
    from simulators.jira import error
    app, base = sim.app, _base

    @app.post(f"{API}/issue/<ref>/attachments")
    def add_attachment(ref: str) -> Response:
        if request.headers.get("X-Atlassian-Token", "").lower() != "no-check":
            return error(403, ["XSRF check failed"])
        if not sim.files.enabled:
            return error(403, ["Attachments are disabled."])
        parts = request.files.getlist("file")
        if not parts:
            return error(400, ["The multipart/form-data parameter 'file' is missing."])
        with sim.lock:
            issue = sim.store.find(ref)
            if issue is None:
                return error(404, ["Issue does not exist or you do not have permission to see it."])
            try:
                added = [_store(sim, sim.files, issue, part) for part in parts]
            except TooLarge:
                return error(413, [f"The file is larger than the upload limit of "
                                   f"{sim.files.upload_limit} bytes."])
            issue.updated = sim.store.tick()
            return jsonify([attachment_json(sim.site, a, base()) for a in added])


def _read_routes(sim: "JiraSimulator") -> None:
    from simulators.jira import error
    app, base = sim.app, _base

    @app.get(f"{API}/attachment/meta")
    def attachment_meta() -> Response:
        return jsonify({"enabled": sim.files.enabled, "uploadLimit": sim.files.upload_limit})

    @app.get(f"{API}/attachment/<attachment_id>")
    def attachment(attachment_id: str) -> Response:
        item = sim.files.by_id.get(attachment_id)
        if item is None:
            return error(404, ["The attachment does not exist."])
        return jsonify(attachment_json(sim.site, item, base()))

    @app.get(f"{API}/attachment/content/<attachment_id>")
    def attachment_content(attachment_id: str) -> Response:
        item = sim.files.by_id.get(attachment_id)
        if item is None:
            return error(404, ["The attachment does not exist."])
        return sim.files.blobs.response(sim.files.blobs.items[item["blob"]])


def _store(sim: "JiraSimulator", files: JiraFiles, issue: Any, part: Any) -> dict[str, Any]:
    blob = sim.files.blobs.put(part.stream, part.filename or "file", part.mimetype or "", sim.files.upload_limit)
    sim.files._next += 1
    item = {"id": str(sim.files._next), "filename": blob.name, "mimeType": blob.content_type,
            "size": blob.size, "created": sim.store.tick(), "author": g.jira_user["accountId"],
            "blob": blob.id, "sha256": blob.sha256}
    sim.files.by_id[item["id"]] = item
    issue.attachments.append(item)
    return item
