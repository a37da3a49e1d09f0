"""Azure DevOps attachments: ``AttachedFile`` relations read, files uploaded then related.

- Reading: the work item's relations (read with ``$expand=relations``) whose ``rel`` is
  ``AttachedFile``: ``url`` (``.../_apis/wit/attachments/{id}?fileName=...``) and
  ``attributes`` (``name``, ``resourceSize``, ``comment``): learn.microsoft.com/rest/api/azure/
  devops/wit/work-items ("Add an attachment"). tiersync's own relations carry
  ``sha256:<hex>`` in their comment, so a copy is known by its content.
- Writing, two steps: Attachments - Create (``POST {project}/_apis/wit/attachments?fileName=``,
  ``application/octet-stream``, the SDK's ``create_attachment`` with the file as its upload
  stream) gives ``{id, url}``; then a work item update adds ``{"rel": "AttachedFile", "url",
  "attributes": {"comment"}}``. Files over ``attachment_chunk_bytes`` go up chunked: Create with
  ``uploadType=Chunked`` and no body, then ``PUT .../attachments/{id}?uploadType=Chunked`` per
  chunk with ``Content-Range: bytes first-last/total`` ("Upload a chunk"; required for files over
  130 MB). The SDK has no chunk call; the chunks go through a plain session with the PAT.
- Limit: 60 MB a file by default (learn.microsoft.com, "Work tracking, process, and project
  limits"); an organization allowed more sets ``attachment_max_bytes``.
"""
from __future__ import annotations

import io
import re
from typing import Any, Iterator

from azure.devops.v7_1.work_item_tracking.models import JsonPatchOperation

from connectors.base import RemoteAttachment
from connectors.files_http import Window, plain_session, stream_get
from connectors.retry import classify_status, classify_transport
from core.errors import PermanentError, Retryable
from core.secrets import read_secret

ADO_LIMIT = 60 * 1024 * 1024
ATTACHED_FILE = "AttachedFile"
SHA = re.compile(r"sha256:([0-9a-f]{64})")
ATTACHMENT_ID = re.compile(r"/attachments/([^/?]+)", re.IGNORECASE)


def item_files(relations: Any) -> tuple[RemoteAttachment, ...]:
    out = []
    for rel in relations or []:
        kind, url = _get(rel, "rel"), _get(rel, "url") or ""
        if kind != ATTACHED_FILE or not ATTACHMENT_ID.search(url):
            continue
        attributes = _get(rel, "attributes") or {}
        found = SHA.search(str(attributes.get("comment") or ""))
        out.append(RemoteAttachment(
            id=ATTACHMENT_ID.search(url)[1], name=str(attributes.get("name") or "attachment"),
            url=url, size=attributes.get("resourceSize"), sha256=found[1] if found else None))
    return tuple(out)


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


class AzureDevOpsFiles:
    """The attachment half of the Azure DevOps connector (core/attachments.FilePort)."""

    name: str
    config: Any
    _files_session: Any = None

    def _session(self) -> Any:
        if self._files_session is None:
            pat = read_secret(self.config.pat_env, tracker=self.name,
                              purpose="the Azure DevOps personal access token")
            self._files_session = plain_session(("", pat))
        return self._files_session

    def _credential(self) -> str:
        return f"the Azure DevOps PAT in {self.config.pat_env}"

    def read_attachment(self, attachment: RemoteAttachment) -> Iterator[bytes]:
        return stream_get(self._session(), attachment.url, tracker=self.name,
                          credential=self._credential(), timeout=self.config.timeout_seconds,
                          headers={"Accept": "application/octet-stream"})

    def attachment_limit(self) -> int:
        return ADO_LIMIT

    def list_attachments(self, remote_id: str) -> list[RemoteAttachment]:
        item = self._retry(lambda: self.client.get_work_item(  # type: ignore[attr-defined]
            int(remote_id), project=self.config.project, expand="relations"), f"get {remote_id}")
        return list(item_files(item.relations))

    def upload_attachment(self, remote_id: str, upload: Any) -> str:
        if upload.size > self.config.attachment_chunk_bytes:
            return self._chunked(upload)

        def send() -> str:
            upload.file.seek(0)
            ref = self.client.create_attachment(  # type: ignore[attr-defined]
                upload.file, project=self.config.project, file_name=upload.name,
                upload_type="Simple")
            return str(ref.url)
        return self._retry(send, f"upload {upload.name}")  # type: ignore[attr-defined]

    def _chunked(self, upload: Any) -> str:
        ref = self._retry(lambda: self.client.create_attachment(  # type: ignore[attr-defined]
            io.BytesIO(b""), project=self.config.project, file_name=upload.name,
            upload_type="Chunked"),
            f"start chunked upload of {upload.name}")
        step = self.config.attachment_chunk_bytes
        for start in range(0, upload.size, step):
            length = min(step, upload.size - start)
            self._retry(lambda s=start, n=length: self._put_chunk(ref.url, upload, s, n),  # type: ignore[attr-defined]
                        f"upload chunk {start} of {upload.name}")
        return str(ref.url)

    def _put_chunk(self, url: str, upload: Any, start: int, length: int) -> None:
        headers = {"Content-Range": f"bytes {start}-{start + length - 1}/{upload.size}",
                   "Content-Type": "application/octet-stream"}
        params = {"uploadType": "Chunked", "fileName": upload.name, "api-version": "7.1"}
        try:
            response = self._session().put(url.split("?")[0], params=params, headers=headers,
                                           data=Window(upload.file, start, length),
                                           timeout=self.config.timeout_seconds)
        except Exception as exc:  # transport errors: the chunk is sent again
            raise (classify_transport(self.name, exc) or Retryable(str(exc), tracker=self.name)) from None
        if response.status_code >= 400:
            raise classify_status(self.name, response.status_code, response.headers,
                                  response.text[:300], credential=self._credential())

    def attach_upload(self, remote_id: str, upload: Any, ref: str) -> str:
        """One try: a lost reply is settled by the sender listing the item's relations."""
        op = JsonPatchOperation(op="add", path="/relations/-", value={
            "rel": ATTACHED_FILE, "url": ref,
            "attributes": {"comment": f"{upload.note} sha256:{upload.sha256}"}})
        self.client.update_work_item([op], int(remote_id), project=self.config.project,  # type: ignore[attr-defined]
                                     suppress_notifications=True)
        found = ATTACHMENT_ID.search(ref)
        if found is None:
            raise PermanentError(f"upload reference {ref!r} names no attachment", tracker=self.name)
        return found[1]
