"""Attachments across trackers: which files go where (the moving is core/attachments_send.py).

Rules:
- A file on a linked record (a Zendesk comment's attachment or inline image, a Jira issue's
  attachment, an Azure DevOps ``AttachedFile`` relation) that tiersync does not know yet is
  recorded in the store (``attachment_files``) as the record's own file and in the escalation's
  ``attachments``; a file tiersync put there itself (a copy) is never copied back.
- Per mapping, like comments: the source mapping's ``attachments.direction`` must be inbound
  (or both) and the target's outbound (or both); ``enabled: false`` switches a tracker off;
  ``inline_images: false`` leaves a comment's inline images out.
- Each file gets one outbox action per target tracker with a record (or a pending create),
  keyed ``attachment:<escalation>:<tracker>:<file id>:<target>`` so it is queued once; a mirror
  created later gets the escalation's earlier files when its record is first read.
- The connector port (:class:`FilePort`) streams content in and out; core never holds a whole
  file in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Protocol, runtime_checkable

from sqlalchemy.engine import Connection

from core.connector import RemoteAttachment, RemoteRecord
from core import files_store as fs
from core.model import Attachment, Escalation

if TYPE_CHECKING:
    from core.engine import SyncEngine


@dataclass(frozen=True)
class Upload:
    """One file on its way to a tracker: a temporary file on disk, never in memory."""

    name: str
    content_type: str
    size: int
    sha256: str
    file: BinaryIO  # positioned at 0
    note: str  # the text tiersync writes with it, naming the source


@runtime_checkable
class FilePort(Protocol):
    """What a connector does for attachments (``connectors/<tracker>_attachments.py``)."""

    def read_attachment(self, attachment: RemoteAttachment) -> Iterator[bytes]:
        """The file's content in chunks (streamed from the tracker)."""
        ...

    def attachment_limit(self) -> int:
        """The largest file (bytes) this tracker takes."""
        ...

    def list_attachments(self, remote_id: str) -> list[RemoteAttachment]:
        """The files on the record now (to find a copy whose outcome is unknown)."""
        ...

    def upload_attachment(self, remote_id: str, upload: Upload) -> str:
        """Send the content; returns the tracker's reference of the upload (for trackers that
        attach in one step, the new attachment's id)."""
        ...

    def attach_upload(self, remote_id: str, upload: Upload, ref: str) -> str:
        """Attach an uploaded file to the record; returns the attachment id."""
        ...


def observe_files(engine: "SyncEngine", tx: Connection, name: str,
                  records: list[RemoteRecord], holding: set[str] | None = None) -> None:
    """Record new files of ``records`` and queue their copies (inside the page's transaction).
    ``holding``: the escalations known to hold files (read with the page), else asked each."""
    mapping = engine.mappings.get(name)
    if mapping is None:
        return
    links = engine.store.links_for(tx, name, [r.id for r in records])
    for record in records:
        link = links.get(record.id)
        has_files = (link.escalation_id in holding) if holding is not None and link is not None \
            else link is not None and bool(fs.files_of(tx, link.escalation_id))
        if link is None or not (record.attachments or has_files):
            continue
        stored = engine.store.get_escalation(tx, link.escalation_id)
        if stored is None or not stored.escalation.state.is_open:
            continue
        fresh = _record_new_files(engine, tx, name, record, link.escalation_id)
        if fresh:
            _add_to_model(engine, tx, stored, fresh)
        queue_copies(engine, tx, stored.escalation)


def _wanted(mapping: Any, attachment: RemoteAttachment) -> bool:
    files = mapping.attachments
    return files.enabled and files.direction in ("inbound", "both") and (
        files.inline_images or not attachment.inline)


def _record_new_files(engine: "SyncEngine", tx: Connection, name: str, record: RemoteRecord,
                      escalation_id: str) -> list[fs.FileRow]:
    known = fs.known_ids(tx, name, [escalation_id])
    fresh = []
    for attachment in record.attachments:
        if (escalation_id, attachment.id) in known or not _wanted(engine.mappings[name], attachment):
            continue
        row = fs.FileRow(escalation_id=escalation_id, tracker=name, attachment_id=attachment.id,
                         record_id=record.id, name=attachment.name,
                         content_type=attachment.content_type, size=attachment.size,
                         url=attachment.url, inline=attachment.inline, sha256=attachment.sha256,
                         origin="source")
        fs.add_file(tx, row, engine.clock())
        fresh.append(row)
    return fresh


def _add_to_model(engine: "SyncEngine", tx: Connection, stored: Any, fresh: list[fs.FileRow]) -> None:
    """The escalation's ``attachments`` (references) gain the new files: a new version."""
    before: Escalation = stored.escalation
    data = before.model_dump()
    data["attachments"] += [Attachment(
        name=f.name, url=f.url, source_tracker=f.tracker, source_id=f.attachment_id,
        source_record=f.record_id, content_type=f.content_type, size=f.size,
        inline=f.inline).model_dump() for f in fresh]
    data.update(version=before.version + 1, updated_at=engine.clock(), updated_by=fresh[0].tracker)
    after = Escalation.model_validate(data)
    engine.store.save_escalation(tx, after, stored.field_times, by=fresh[0].tracker,
                                 run_id=engine.planner.run_id, previous_version=before.version)
    stored.escalation = after


def queue_copies(engine: "SyncEngine", tx: Connection, escalation: Escalation) -> None:
    """One action per (source file, target tracker) not queued before."""
    sources = [row for row in fs.files_of(tx, escalation.id) if row.origin == "source"]
    targets = _targets(engine, tx, escalation) if sources else []
    for row in sources:
        for target in targets:
            if target == row.tracker:
                continue
            key = f"attachment:{escalation.id}:{row.tracker}:{row.attachment_id}:{target}"
            engine.store.enqueue(tx, escalation_id=escalation.id, connector=target,
                                 kind="attachment", now=engine.clock(), dedupe_key=key,
                                 rule="sync.attachments",
                                 payload={"source_tracker": row.tracker,
                                          "source_id": row.attachment_id, "name": row.name})


def _targets(engine: "SyncEngine", tx: Connection, escalation: Escalation) -> list[str]:
    linked = {link.tracker for link in engine.store.links_of(tx, [escalation.id])[escalation.id]}
    out = []
    for name, mapping in engine.mappings.items():
        files = mapping.attachments
        if not files.enabled or files.direction not in ("outbound", "both"):
            continue
        if name in linked or engine.store.pending_create(tx, escalation.id, name) is not None:
            out.append(name)
    return out


def size_text(size: int | None) -> str:
    if size is None:
        return "unknown size"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
