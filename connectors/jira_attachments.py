"""Jira attachments: the issue's ``attachment`` field read, files added with one multipart POST.

- Reading: ``fields.attachment`` of the issue (``id``, ``filename``, ``mimeType``, ``size``,
  ``content``: Jira Cloud REST v2 "Issue attachments"); the content is read from ``content``
  with the API credentials.
- Writing: ``POST /rest/api/2/issue/{id}/attachments`` as ``multipart/form-data`` with the part
  named ``file`` and the header ``X-Atlassian-Token: no-check`` (the endpoint is XSRF-protected:
  "Add attachment", developer.atlassian.com/cloud/jira/platform/rest/v2/api-group-issue-
  attachments). jira's ``add_attachment`` does the same but labels every part
  ``application/octet-stream``; here the part carries the file's own type, streamed with
  requests-toolbelt's ``MultipartEncoder`` (what the library uses). Upload and attach are one
  request: a lost reply is settled by listing the issue's files (core/attachments_send.py).
- Limit: the site's ``uploadLimit`` from ``GET /rest/api/2/attachment/meta`` (admins set it;
  "Get Jira attachment settings"), read once; attachments switched off there count as limit 0.
"""
from __future__ import annotations

from typing import Any, Iterator

from requests_toolbelt import MultipartEncoder

from connectors.base import RemoteAttachment
from connectors.files_http import plain_session, stream_get
from core.errors import PermanentError
from core.secrets import read_secret


def issue_files(fields: dict[str, Any]) -> tuple[RemoteAttachment, ...]:
    return tuple(as_remote(a) for a in fields.get("attachment") or []
                 if isinstance(a, dict) and a.get("id") is not None)


def as_remote(item: dict[str, Any]) -> RemoteAttachment:
    return RemoteAttachment(id=str(item["id"]), name=str(item.get("filename") or item["id"]),
                            url=str(item.get("content") or ""), content_type=item.get("mimeType"),
                            size=item.get("size"))


class JiraFiles:
    """The attachment half of the Jira connector (core/attachments.FilePort)."""

    name: str
    config: Any
    api: Any
    _files_session: Any = None
    _upload_limit: int | None = None

    def _session(self) -> Any:
        if self._files_session is None:
            email = read_secret(self.config.email_env, tracker=self.name, purpose="the Jira account email")
            token = read_secret(self.config.token_env, tracker=self.name, purpose="the Jira API token")
            self._files_session = plain_session((email, token))
        return self._files_session

    def read_attachment(self, attachment: RemoteAttachment) -> Iterator[bytes]:
        return stream_get(self._session(), attachment.url, tracker=self.name,
                          credential=self.api.credential, timeout=self.config.timeout_seconds)

    def attachment_limit(self) -> int:
        if self._upload_limit is None:
            meta = self.api.retrying("attachment settings", lambda: self.api.get_json("attachment/meta"))
            enabled = bool((meta or {}).get("enabled", True))
            self._upload_limit = int((meta or {}).get("uploadLimit") or 0) if enabled else 0
        return self._upload_limit

    def list_attachments(self, remote_id: str) -> list[RemoteAttachment]:
        issue = self.api.retrying(f"read attachments of {remote_id}", lambda: self.api.get_json(
            f"issue/{remote_id}", {"fields": "attachment"}))
        return list(issue_files((issue or {}).get("fields") or {}))

    def upload_attachment(self, remote_id: str, upload: Any) -> str:
        def send() -> str:
            upload.file.seek(0)
            body = MultipartEncoder(fields={"file": (upload.name, upload.file, upload.content_type)})
            client = self.api.client
            response = client._session.post(
                client._get_url(f"issue/{remote_id}/attachments"), data=body,
                headers={"Content-Type": body.content_type, "X-Atlassian-Token": "no-check"})
            found = response.json()
            if not isinstance(found, list) or not found or "id" not in found[0]:
                raise PermanentError(f"issue {remote_id}: attachment answer without an id",
                                     tracker=self.name)
            return str(found[0]["id"])
        return self.api.call(f"attach {upload.name} to {remote_id}", send)

    def attach_upload(self, remote_id: str, upload: Any, ref: str) -> str:
        return ref  # the upload attached it
