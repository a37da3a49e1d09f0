"""Zendesk uploads and attachments in the simulator.

- ``POST /api/v2/uploads?filename=<name>[&token=<t>]``: the raw body is the file, its
  Content-Type the file's type ("Upload Files", developer.zendesk.com/api-reference/ticketing/
  tickets/ticket-attachments/#upload-files); answers 201 ``{"upload": {"token", "expires_at",
  "attachment", "attachments"}}``. No filename: 400. Over 50 MB: 413 (support.zendesk.com,
  "Attachment size limits": 50 MB a file).
- A token is used by a ticket comment's ``uploads``; one not used within 60 minutes (scaled)
  expires and its files are deleted ("Can I attach files to tickets using the API": "The
  attachment's token expires after 60 minutes"). An unknown or expired token: 422 (harsher
  than silently dropping it; unverifiable).
- Content at ``/attachments/token/<token>/?name=<name>`` (the ``content_url`` shape), signed in
  only (the harsher reading of "private attachments").
"""
from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from flask import jsonify, request

from simulators.blobs import Blobs, TooLarge
from simulators.zendesk_values import ApiError

if TYPE_CHECKING:
    from simulators.zendesk import ZendeskSimulator

LIMIT = 50 * 1024 * 1024
TOKEN_SECONDS = 3600.0


class ZendeskFiles:
    def __init__(self, sim: "ZendeskSimulator"):
        self.sim = sim
        self.blobs = Blobs()
        self.tokens: dict[str, dict[str, Any]] = {}  # token -> {expires, ids}
        self.attachments: dict[int, dict[str, Any]] = {}
        self._next = 498_000_000_001
        self.limit = LIMIT

    def upload(self, base: str) -> Any:
        name = request.args.get("filename")
        if not name:
            raise ApiError(400, "InvalidValue", "filename is required")
        try:
            blob = self.blobs.put(request.stream, name, request.content_type or "", self.limit)
        except TooLarge:
            raise ApiError(413, "RecordInvalid", f"File is too large (limit {self.limit} bytes)") from None
        token = request.args.get("token") or uuid.uuid4().hex[:25]
        attachment = self._attachment(blob, base)
        entry = self.tokens.setdefault(token, {"ids": []})
        entry["expires"] = time.time() + self.sim.profile.seconds(TOKEN_SECONDS)
        entry["ids"].append(attachment["id"])
        items = [self.attachments[i] for i in entry["ids"]]
        return jsonify({"upload": {"token": token, "attachment": attachment, "attachments": items}}), 201

    def _attachment(self, blob: Any, base: str) -> dict[str, Any]:
        attachment_id = self._next
        self._next += 1
        item = {"id": attachment_id, "file_name": blob.name, "content_type": blob.content_type,
                "size": blob.size, "inline": False, "deleted": False, "blob": blob.id,
                "content_url": f"{base}/attachments/token/{blob.id}/?name={blob.name}",
                "url": f"{base}/api/v2/attachments/{attachment_id}.json"}
        self.attachments[attachment_id] = item
        return self.public(item)

    @staticmethod
    def public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k != "blob"}

    def resolve(self, comment: dict[str, Any] | None) -> None:
        """A comment's ``uploads`` tokens become its ``attachments`` (tokens are used up)."""
        if not isinstance(comment, dict) or not comment.get("uploads"):
            return
        found = []
        for token in comment.pop("uploads"):
            entry = self.tokens.get(str(token))
            if entry is None or entry["expires"] < time.time():
                self.tokens.pop(str(token), None)
                raise ApiError(422, "RecordInvalid", f"Uploads token {token} is invalid or expired")
            found += [self.public(self.attachments[i]) for i in entry["ids"]]
            del self.tokens[str(token)]
        comment["attachments"] = found

    def content(self, blob_id: str) -> Any:
        blob = self.blobs.items.get(blob_id)
        if blob is None:
            raise ApiError(404, "RecordNotFound", "Not found")
        return self.blobs.response(blob)

    def attach_as_person(self, name: str, data: bytes, content_type: str, base: str) -> str:
        """An upload made by a person in the agent UI (tests): returns its token."""
        import io
        blob = self.blobs.put(io.BytesIO(data), name, content_type, self.limit)
        token = uuid.uuid4().hex[:25]
        attachment = self._attachment(blob, base)
        self.tokens[token] = {"ids": [attachment["id"]],
                              "expires": time.time() + self.sim.profile.seconds(TOKEN_SECONDS)}
        return token


def add_routes(sim: "ZendeskSimulator", files: ZendeskFiles) -> None:
    route = sim._route

    @route("/api/v2/uploads", ["POST"])
    def uploads() -> Any:
        return files.upload(sim._base())

    @route("/attachments/token/<blob_id>/", ["GET"])
    def attachment_content(blob_id: str) -> Any:
        return files.content(blob_id)
