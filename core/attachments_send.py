"""Moving one file to one tracker (an outbox ``attachment`` action), crash-safe and streamed.

Rules:
- The content is streamed from the source tracker into a temporary file on disk while its
  SHA-256 is computed (1 MiB chunks), then streamed to the target: memory stays flat whatever
  the size.
- A file above the target's limit (``attachment_max_bytes``, else the tracker's own) is not
  copied: an internal note on the target names it, its size and the limit, and links to the
  original.
- A record never gets a content it already holds (same SHA-256, its own file or a copy).
- The hash is recorded (state ``sending``) before the first byte is sent, the tracker's upload
  reference (state ``uploaded``) before the relation or comment that attaches it. After a crash
  or an unknown outcome the record's files are listed first: a file with this hash (stated by the
  tracker, or same name and size and the same hash when read back) is adopted, never sent again;
  an upload recorded but not attached is attached, not uploaded again.
- Every file copied, linked or skipped as a duplicate gets an audit entry with its name, size,
  hash and source.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, BinaryIO

from core.connector import TIERSYNC_COMMENT_MARK, RemoteAttachment
from core import files_store as fs
from core.attachments import FilePort, Upload, size_text
from core.errors import NotFound

if TYPE_CHECKING:
    from core.outbox import OutboxApplier
    from core.store import LinkRow, OutboxRow

CHUNK = 1 << 20
DONE_STATES = ("attached", "linked", "duplicate")


class TooLarge(Exception):
    pass


def stream_to(port: FilePort, attachment: RemoteAttachment, out: BinaryIO, limit: int) -> tuple[str, int]:
    """Copy the content into ``out``; (sha256, size). Raises TooLarge past ``limit``."""
    digest, size = hashlib.sha256(), 0
    for chunk in port.read_attachment(attachment):
        size += len(chunk)
        if size > limit:
            raise TooLarge(size)
        digest.update(chunk)
        out.write(chunk)
    out.flush()
    out.seek(0)
    return digest.hexdigest(), size


def remote_of(row: fs.FileRow) -> RemoteAttachment:
    return RemoteAttachment(id=row.attachment_id, name=row.name, url=row.url or "",
                            content_type=row.content_type, size=row.size, inline=row.inline)


class FileSender:
    def __init__(self, applier: "OutboxApplier"):
        self.applier = applier
        self.engine = applier.engine
        self.store = applier.store
        self._files: dict[tuple[str, str], tuple[str, str, int]] = {}  # this pass's reads
        self._dir: str | None = None

    def apply(self, action: "OutboxRow", connector: Any, report: Any) -> None:
        p = action.payload
        with self.store.transaction() as tx:
            row = fs.file_of(tx, action.escalation_id, p["source_tracker"], p["source_id"])
            send = fs.send_of(tx, action.escalation_id, p["source_tracker"], p["source_id"],
                              action.connector)
            waiting = self.store.pending_create(tx, action.escalation_id, action.connector)
        link = self.applier._link_for_escalation(action)
        source = self.engine.connectors.get(p["source_tracker"])
        if link is None:
            if waiting is None:
                self._skip(action, report, f"escalation has no record in {action.connector}")
            return  # the mirror is still being created: next cycle
        if row is None or not isinstance(connector, FilePort) or not isinstance(source, FilePort):
            self._skip(action, report, "no such file, or a tracker without attachments")
            return
        if send is not None and send.state in DONE_STATES:
            self._finish(action, report, send.state, {})
            return
        send = send or fs.SendRow(action.escalation_id, row.tracker, row.attachment_id,
                                  action.connector, link.remote_id, "new", None, None, None, None, 0)
        self._move(action, connector, source, row, send, link, report)

    def _content(self, source: Any, row: fs.FileRow, limit: int) -> tuple[str, str, int]:
        """(path, sha256, size) of the source file on disk; read once per outbox pass, however
        many trackers it goes to."""
        key = (row.tracker, row.attachment_id)
        cached = self._files.get(key)
        if cached is not None:
            if cached[2] > limit:
                raise TooLarge(cached[2])
            return cached
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="tiersync-files-")
        with tempfile.NamedTemporaryFile(dir=self._dir, delete=False) as out:
            sha, size = stream_to(source, remote_of(row), out, max(limit, self._largest()))
        self._files[key] = (out.name, sha, size)
        if size > limit:
            raise TooLarge(size)
        return self._files[key]

    def _largest(self) -> int:
        """The largest limit of any tracker, so a file read for one target serves the others."""
        limits = [self._limit(c) for c in self.engine.connectors.values() if isinstance(c, FilePort)]
        return max(limits, default=0)

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir, self._files = None, {}

    def _limit(self, connector: Any) -> int:
        configured = getattr(connector.config, "attachment_max_bytes", None)
        return int(configured or connector.attachment_limit())

    def _move(self, action: "OutboxRow", target: Any, source: Any, row: fs.FileRow,
              send: fs.SendRow, link: "LinkRow", report: Any) -> None:
        limit = self._limit(target)
        if row.size is not None and row.size > limit:
            self._link_instead(action, row, send, link, limit, row.size, report)
            return
        try:
            path, sha, size = self._content(source, row, limit)
        except TooLarge as exc:
            self._link_instead(action, row, send, link, limit, int(exc.args[0]), report)
            return
        with open(path, "rb") as tmp:
            send.sha256, send.size = sha, size
            with self.store.transaction() as tx:
                fs.set_file_hash(tx, row.escalation_id, row.tracker, row.attachment_id, sha, size)
                held = fs.hashes_on(tx, row.escalation_id, action.connector, link.remote_id)
            if sha in held:
                self._record(action, send, "duplicate", None, row, report)
                return
            upload = Upload(name=row.name, content_type=row.content_type or "application/octet-stream",
                            size=size, sha256=sha, file=tmp, note=self._note(row, size, sha))
            self._send(action, target, send, upload, link, row, report)

    def _send(self, action: "OutboxRow", target: Any, send: fs.SendRow, upload: Upload,
              link: "LinkRow", row: fs.FileRow, report: Any) -> None:
        if send.state in ("sending", "uploaded"):  # an earlier try's outcome is unknown
            found = self._already_there(target, link, upload, row)
            if found is not None:
                self._record(action, send, "attached", found, row, report, adopted=True)
                return
        if send.state != "uploaded" or not send.upload_ref:
            self._save(send, "sending")
            upload.file.seek(0)
            send.upload_ref = target.upload_attachment(link.remote_id, upload)
            self._save(send, "uploaded")
        try:
            attachment_id = target.attach_upload(link.remote_id, upload, send.upload_ref)
        except NotFound:  # the upload expired (Zendesk tokens last 60 minutes): send it again
            self._save(send, "new", upload_ref=None)
            raise
        self._record(action, send, "attached", attachment_id, row, report)

    def _already_there(self, target: Any, link: "LinkRow", upload: Upload,
                       row: fs.FileRow) -> str | None:
        """The id of a file on the target record with this content: the hash the tracker
        states, else same name and size and the same hash read back. A file the store already
        knows from a pull is no exception: the pull may have read the very upload whose reply
        was lost (Jira states no hash, so it looked like someone else's file)."""
        for candidate in target.list_attachments(link.remote_id):
            if candidate.sha256 is not None:
                if candidate.sha256 == upload.sha256:
                    return candidate.id
                continue
            if candidate.name == upload.name and candidate.size == upload.size \
                    and self._hash_of(target, candidate, upload.size) == upload.sha256:
                return candidate.id
        return None

    @staticmethod
    def _hash_of(port: Any, attachment: RemoteAttachment, size: int) -> str:
        with tempfile.TemporaryFile(prefix="tiersync-") as tmp:
            return stream_to(port, attachment, tmp, size)[0]

    def _note(self, row: fs.FileRow, size: int, sha: str) -> str:
        return (f"{TIERSYNC_COMMENT_MARK} Attachment {row.name} ({size_text(size)}) from "
                f"{row.tracker} record {row.record_id} (sha256 {sha[:12]})")

    # -- outcomes -------------------------------------------------------------------------------
    def _save(self, send: fs.SendRow, state: str, **changes: Any) -> None:
        send.state = state
        for key, value in changes.items():
            setattr(send, key, value)
        with self.store.transaction() as tx:
            fs.save_send(tx, send, self.engine.clock())

    def _record(self, action: "OutboxRow", send: fs.SendRow, state: str, attachment_id: str | None,
                row: fs.FileRow, report: Any, adopted: bool = False) -> None:
        send.state, send.target_id = state, attachment_id
        with self.store.transaction() as tx:
            fs.save_send(tx, send, self.engine.clock())
            if attachment_id is not None:
                fs.add_file(tx, fs.FileRow(row.escalation_id, action.connector, attachment_id,
                                           send.target_record or "", row.name, row.content_type,
                                           send.size, None, row.inline, send.sha256, "copy"),
                            self.engine.clock())
            what = {"attached": "attachment-found-existing" if adopted else "attachment-copied",
                    "duplicate": "attachment-duplicate"}[state]
            self._done(tx, action, what, attachment_id, row, send)
        report.actions_done += 1

    def _link_instead(self, action: "OutboxRow", row: fs.FileRow, send: fs.SendRow,
                      link: "LinkRow", limit: int, size: int, report: Any) -> None:
        body = (f"{TIERSYNC_COMMENT_MARK} The attachment {row.name} ({size_text(size)}) on "
                f"{row.tracker} record {row.record_id} is larger than {action.connector}'s limit "
                f"of {size_text(limit)}, so it was not copied here. Open the original: "
                f"{row.url or '(no link)'}")
        send.state, send.size = "linked", size
        with self.store.transaction() as tx:
            fs.save_send(tx, send, self.engine.clock())
            key = f"attachment-link:{row.escalation_id}:{row.tracker}:{row.attachment_id}:{action.connector}"
            self.engine.planner._enqueue_comment(tx, row.escalation_id, action.connector, body,
                                                 False, key, "sync.attachments", self.engine.clock())
            self._done(tx, action, "attachment-linked", None, row, send)
        report.actions_done += 1

    def _done(self, tx: Any, action: "OutboxRow", what: str, attachment_id: str | None,
              row: fs.FileRow, send: fs.SendRow) -> None:
        self.store.finish_action(tx, action.id, "done", self.engine.clock(),
                                 result={"attachment_id": attachment_id, "state": send.state})
        self.applier._audit_tx(tx, action, what, f"attachment {attachment_id or '-'}",
                               remote_id=send.target_record, after={
                                   "name": row.name, "size": send.size, "sha256": send.sha256,
                                   "content_type": row.content_type,
                                   "source": f"{row.tracker}:{row.record_id}:{row.attachment_id}"})

    def _skip(self, action: "OutboxRow", report: Any, why: str) -> None:
        self.applier._finish(action, "superseded", why)

    def _finish(self, action: "OutboxRow", report: Any, state: str, result: dict) -> None:
        self.applier._finish(action, "done", f"attachment already {state}")
