"""Azure DevOps work item attachments in the simulator.

- Attachments - Create, ``POST {org}/{project}/_apis/wit/attachments?fileName=<name>``: the body
  is the file (``application/octet-stream``); answers ``{id, url}``
  (learn.microsoft.com/rest/api/azure/devops/wit/attachments/create). Without ``fileName``: 400.
  A simple upload over 130 MB is refused ("On accounts with higher attachment upload limits
  (>130MB), you will need to use chunked upload"); over the organization's limit (60 MB by
  default, "Work tracking, process, and project limits"): 413.
- ``uploadType=Chunked``: Create with no body starts an upload; ``PUT .../attachments/{id}
  ?uploadType=Chunked`` with ``Content-Range: bytes first-last/total`` writes one chunk ("Upload
  a chunk"); a missing or malformed range: 400. The file is usable once every byte arrived.
- ``GET .../attachments/{id}``: the bytes. An ``AttachedFile`` relation must name a complete
  upload of this organization (else 400); Azure DevOps fills its ``name`` and ``resourceSize``.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from flask import Response, jsonify, request

from simulators.azure_devops_types import SimError
from simulators.blobs import Blobs, TooLarge

if TYPE_CHECKING:
    from simulators.azure_devops import AzureDevOpsSimulator

LOCATION = {"id": "e07b5fa4-1499-494d-a496-64b860fd64ff", "area": "wit", "resourceName": "attachments",
            "routeTemplate": "{project}/_apis/{area}/{resource}/{id}", "resourceVersion": 3,
            "minVersion": "1.0", "maxVersion": "7.1", "releasedVersion": "0.0"}
SIMPLE_LIMIT = 130 * 1024 * 1024
ORG_LIMIT = 60 * 1024 * 1024
RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
URL_ID = re.compile(r"/_apis/wit/attachments/([0-9a-f-]+)", re.IGNORECASE)


class AdoFiles:
    def __init__(self) -> None:
        self.blobs = Blobs()
        self.limit = ORG_LIMIT
        self.complete: set[str] = set()
        self.expected: dict[str, int] = {}  # chunked uploads: id -> total size

    def attributes(self, url: str) -> dict[str, Any]:
        found = URL_ID.search(url or "")
        blob = self.blobs.items.get(found[1]) if found else None
        if blob is None or blob.id not in self.complete:
            raise SimError(400, f"TF401017: The attachment {url} does not exist or its upload "
                           "is not complete.", "AttachmentNotFoundException")
        return {"name": blob.name, "resourceSize": blob.size}


def _guard(sim: "AzureDevOpsSimulator", org: str) -> Response | None:
    if org.lower() != sim.store.organization.lower():
        return _error(SimError(404, f"TF400898: The organization {org} does not exist.",
                               "HostNotFoundException"))
    if not sim._authorized():
        return Response("TF400813: Resource not available for anonymous access.", status=401)
    return None


def add_routes(sim: "AzureDevOpsSimulator") -> None:
    _upload_routes(sim)
    _read_routes(sim)


def _upload_routes(sim: "AzureDevOpsSimulator") -> None:
    app = sim.app

    def guard(org: str) -> Response | None:
        return _guard(sim, org)

    @app.post("/<org>/<project>/_apis/wit/attachments")
    def create_attachment(org: str, project: str) -> Response:
        denied = guard(org)
        if denied is not None:
            return denied
        name = request.args.get("fileName")
        if not name:
            return _error(SimError(400, "VS403253: fileName is required.", "ArgumentException"))
        base = f"{request.host_url.rstrip('/')}/{org}/{project}/_apis/wit/attachments"
        if (request.args.get("uploadType") or "Simple").lower() == "chunked":
            blob = sim.files.blobs.put(_Empty(), name, "application/octet-stream", 0)
            return _created(blob.id, name, base)
        limit = min(SIMPLE_LIMIT, sim.files.limit)
        try:
            blob = sim.files.blobs.put(request.stream, name, "application/octet-stream", limit)
        except TooLarge:
            return _error(SimError(413, f"VS403294: The attachment is larger than {limit} bytes; "
                                   "upload it chunked (uploadType=Chunked) if the organization "
                                   "allows it.", "AttachmentTooLargeException"))
        sim.files.complete.add(blob.id)
        return _created(blob.id, name, base)

    @app.put("/<org>/<project>/_apis/wit/attachments/<attachment_id>")
    def upload_chunk(org: str, project: str, attachment_id: str) -> Response:
        denied = guard(org)
        if denied is not None:
            return denied
        blob = sim.files.blobs.items.get(attachment_id)
        match = RANGE.match(request.headers.get("Content-Range", ""))
        if blob is None:
            return _error(SimError(404, f"The attachment {attachment_id} does not exist.", "AttachmentNotFoundException"))
        if match is None:
            return _error(SimError(400, "Content-Range header not understood.", "ArgumentException"))
        first, last, total = (int(g) for g in match.groups())
        if total > sim.files.limit:
            return _error(SimError(413, f"VS403294: The attachment is larger than {sim.files.limit} bytes.",
                                   "AttachmentTooLargeException"))
        with sim.lock:
            sim.files.blobs.append(blob, request.stream, first, total)
            if blob.size == total:
                sim.files.complete.add(blob.id)
        return jsonify({"id": blob.id, "url": f"{request.base_url}"})


def _read_routes(sim: "AzureDevOpsSimulator") -> None:
    app = sim.app

    def guard(org: str) -> Response | None:
        return _guard(sim, org)

    @app.get("/<org>/<project>/_apis/wit/attachments/<attachment_id>")
    def attachment_content(org: str, project: str, attachment_id: str) -> Response:
        denied = guard(org)
        if denied is not None:
            return denied
        blob = sim.files.blobs.items.get(attachment_id)
        if blob is None or blob.id not in sim.files.complete:
            return _error(SimError(404, f"The attachment {attachment_id} does not exist.", "AttachmentNotFoundException"))
        return sim.files.blobs.response(blob)


class _Empty:
    @staticmethod
    def read(_size: int = -1) -> bytes:
        return b""


def _created(blob_id: str, name: str, base: str) -> Response:
    response = jsonify({"id": blob_id, "url": f"{base}/{blob_id}?fileName={name}"})
    response.status_code = 201
    return response


def _error(exc: SimError) -> Response:
    response = jsonify(exc.body())
    response.status_code = exc.status
    return response
