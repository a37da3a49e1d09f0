"""Zendesk attachments: a comment's files (and inline images) read, files added on a private note.

- Reading: every comment's ``attachments`` (``id``, ``file_name``, ``content_url``,
  ``content_type``, ``size``, ``inline``: developer.zendesk.com/api-reference/ticketing/tickets/
  ticket-attachments/), the description's included; a note tiersync wrote (``[tiersync]``) holds
  copies, never sources. The content is read from ``content_url`` with the API credentials.
- Writing: ``POST /api/v2/uploads?filename=<name>`` with the raw bytes and their Content-Type
  (zenpy ``attachments.upload``) gives a token; ``PUT /api/v2/tickets/{id}`` with
  ``comment: {body, public: false, uploads: [token]}`` attaches it to a private note
  ("Adding ticket attachments with the API"). A token not used within 60 minutes expires (the
  upload is deleted, 404): the sender uploads again.
- Limit: 50 MB per file (support.zendesk.com, "Attachment size limits").
"""
from __future__ import annotations

from typing import Any, Iterator

from connectors.base import TIERSYNC_COMMENT_MARK, RemoteAttachment
from connectors.files_http import plain_session, stream_get
from core.errors import NotFound, PermanentError
from core.secrets import read_secret

ZENDESK_LIMIT = 50 * 1024 * 1024


def comment_files(comment: dict[str, Any]) -> list[RemoteAttachment]:
    """The files of one comment (none for tiersync's own notes)."""
    if str(comment.get("body") or "").lstrip().startswith(TIERSYNC_COMMENT_MARK):
        return []
    return [as_remote(a, str(comment.get("id"))) for a in comment.get("attachments") or []
            if isinstance(a, dict) and a.get("id") is not None]


def as_remote(item: dict[str, Any], comment_id: str | None = None) -> RemoteAttachment:
    return RemoteAttachment(id=str(item["id"]), name=str(item.get("file_name") or item["id"]),
                            url=str(item.get("content_url") or ""),
                            content_type=item.get("content_type"), size=item.get("size"),
                            inline=bool(item.get("inline")), comment_id=comment_id)


def files_of(comments: list[dict[str, Any]]) -> tuple[RemoteAttachment, ...]:
    return tuple(f for c in comments for f in comment_files(c))


class ZendeskFiles:
    """The attachment half of the Zendesk connector (core/attachments.FilePort)."""

    name: str
    config: Any
    _files_session: Any = None

    def _session(self) -> Any:
        if self._files_session is None:
            cfg = self.config
            email = read_secret(cfg.email_env, tracker=self.name, purpose="the Zendesk agent email")
            token = read_secret(cfg.token_env, tracker=self.name, purpose="the Zendesk API token")
            self._files_session = plain_session((f"{email}/token", token))
        return self._files_session

    def read_attachment(self, attachment: RemoteAttachment) -> Iterator[bytes]:
        return stream_get(self._session(), attachment.url, tracker=self.name,
                          credential=f"{self.config.email_env}/{self.config.token_env}",
                          timeout=self.config.timeout_seconds)

    def attachment_limit(self) -> int:
        return ZENDESK_LIMIT

    def list_attachments(self, remote_id: str) -> list[RemoteAttachment]:
        comments = self._comments(int(remote_id))  # type: ignore[attr-defined]
        return [as_remote(a, str(c.get("id"))) for c in comments for a in c.get("attachments") or []]

    def upload_attachment(self, remote_id: str, upload: Any) -> str:
        def send() -> str:
            upload.file.seek(0)
            result = self.client.zenpy.attachments.upload(  # type: ignore[attr-defined]
                upload.file, target_name=upload.name, content_type=upload.content_type)
            token = getattr(result, "token", None)
            if not token:
                raise PermanentError("upload answered without a token", tracker=self.name)
            return str(token)
        return self._retry(lambda: self.client.call(send), "upload file")  # type: ignore[attr-defined]

    def attach_upload(self, remote_id: str, upload: Any, ref: str) -> str:
        """One try: a lost reply is settled by the sender listing the ticket's files."""
        update = {"comment": {"body": upload.note, "public": False, "uploads": [ref]}}
        _, audit = self.client.update_ticket(int(remote_id), update)  # type: ignore[attr-defined]
        for event in audit.get("events") or []:
            for item in (event.get("attachments") or []) if isinstance(event, dict) else []:
                if item.get("file_name") == upload.name:
                    return str(item["id"])
        raise NotFound(f"ticket {remote_id}: the note kept no attachment (upload token "
                       f"expired?)", tracker=self.name, status=404)
