"""Store tables of attachments and people (core/attachments.py, core/people.py).

- ``attachment_files``: every file tiersync knows on a linked record, the tracker's own
  (``origin = "source"``) and the copies tiersync made (``origin = "copy"``), with the content
  hash once read. A record never gets a second file with a hash it already holds.
- ``attachment_sends``: one row per (escalation, source file, target tracker): the copy's state
  (``sending`` with the hash recorded before any byte leaves, then ``uploaded`` with the
  tracker's upload reference, ``attached``, ``linked`` or ``duplicate``). A process killed
  between upload and relation resumes from the recorded upload instead of sending again.
- ``people_cache``: address -> tracker user per tracker, found or not, with when it was read.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, BigInteger, Integer, String, Table, Text, insert, select, update
from sqlalchemy.engine import Connection

from core.schema import UTC, metadata

attachment_files = Table(
    "attachment_files", metadata,
    Column("escalation_id", String(40), primary_key=True),
    Column("tracker", String(64), primary_key=True),
    Column("attachment_id", String(255), primary_key=True),
    Column("record_id", String(128), nullable=False),
    Column("name", Text, nullable=False),
    Column("content_type", String(255)),
    Column("size", BigInteger),
    Column("url", Text),
    Column("inline", Boolean, nullable=False, default=False),
    Column("sha256", String(64), index=True),
    Column("origin", String(16), nullable=False),  # source | copy
    Column("seen_at", UTC, nullable=False),
)

attachment_sends = Table(
    "attachment_sends", metadata,
    Column("escalation_id", String(40), primary_key=True),
    Column("source_tracker", String(64), primary_key=True),
    Column("source_id", String(255), primary_key=True),
    Column("target_tracker", String(64), primary_key=True),
    Column("target_record", String(128)),
    Column("state", String(16), nullable=False),
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("upload_ref", Text),  # the tracker's upload (Azure DevOps URL, Zendesk token)
    Column("target_id", String(255)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("updated_at", UTC, nullable=False),
)

people_cache = Table(
    "people_cache", metadata,
    Column("tracker", String(64), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("ref", String(320)),  # None: not found
    Column("display_name", Text),
    Column("state", String(16), nullable=False),  # found | missing | inactive
    Column("fetched_at", UTC, nullable=False),
)

TABLES = [attachment_files, attachment_sends, people_cache]


def create_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=TABLES)


@dataclass(frozen=True)
class FileRow:
    escalation_id: str
    tracker: str
    attachment_id: str
    record_id: str
    name: str
    content_type: str | None
    size: int | None
    url: str | None
    inline: bool
    sha256: str | None
    origin: str


@dataclass
class SendRow:
    escalation_id: str
    source_tracker: str
    source_id: str
    target_tracker: str
    target_record: str | None
    state: str
    sha256: str | None
    size: int | None
    upload_ref: str | None
    target_id: str | None
    attempts: int


def _file(row: Any) -> FileRow:
    return FileRow(**{k: row._mapping[k] for k in FileRow.__dataclass_fields__})


# -- files ----------------------------------------------------------------------------------------
def files_of(tx: Connection, escalation_id: str) -> list[FileRow]:
    rows = tx.execute(select(attachment_files).where(
        attachment_files.c.escalation_id == escalation_id)).all()
    return [_file(r) for r in rows]


def file_of(tx: Connection, escalation_id: str, tracker: str, attachment_id: str) -> FileRow | None:
    row = tx.execute(select(attachment_files).where(
        (attachment_files.c.escalation_id == escalation_id) & (attachment_files.c.tracker == tracker)
        & (attachment_files.c.attachment_id == attachment_id))).first()
    return _file(row) if row else None


def known_ids(tx: Connection, tracker: str, escalation_ids: list[str]) -> set[tuple[str, str]]:
    """(escalation id, attachment id) of every file known on ``tracker``'s records."""
    if not escalation_ids:
        return set()
    rows = tx.execute(select(attachment_files.c.escalation_id, attachment_files.c.attachment_id)
                      .where((attachment_files.c.tracker == tracker)
                             & attachment_files.c.escalation_id.in_(escalation_ids))).all()
    return {(r[0], r[1]) for r in rows}


def add_file(tx: Connection, row: FileRow, now: datetime) -> None:
    if file_of(tx, row.escalation_id, row.tracker, row.attachment_id) is None:
        tx.execute(insert(attachment_files).values(**row.__dict__, seen_at=now))


def set_file_hash(tx: Connection, escalation_id: str, tracker: str, attachment_id: str,
                  sha256: str, size: int) -> None:
    tx.execute(update(attachment_files).where(
        (attachment_files.c.escalation_id == escalation_id) & (attachment_files.c.tracker == tracker)
        & (attachment_files.c.attachment_id == attachment_id)).values(sha256=sha256, size=size))


def hashes_on(tx: Connection, escalation_id: str, tracker: str, record_id: str) -> set[str]:
    rows = tx.execute(select(attachment_files.c.sha256).where(
        (attachment_files.c.escalation_id == escalation_id) & (attachment_files.c.tracker == tracker)
        & (attachment_files.c.record_id == record_id)
        & attachment_files.c.sha256.is_not(None))).all()
    return {r[0] for r in rows}


# -- sends ----------------------------------------------------------------------------------------
def _send_where(escalation_id: str, source_tracker: str, source_id: str, target: str) -> Any:
    c = attachment_sends.c
    return ((c.escalation_id == escalation_id) & (c.source_tracker == source_tracker)
            & (c.source_id == source_id) & (c.target_tracker == target))


def send_of(tx: Connection, escalation_id: str, source_tracker: str, source_id: str,
            target: str) -> SendRow | None:
    row = tx.execute(select(attachment_sends).where(
        _send_where(escalation_id, source_tracker, source_id, target))).first()
    if row is None:
        return None
    return SendRow(**{k: row._mapping[k] for k in SendRow.__dataclass_fields__})


def save_send(tx: Connection, send: SendRow, now: datetime) -> None:
    values = {**send.__dict__, "updated_at": now}
    where = _send_where(send.escalation_id, send.source_tracker, send.source_id, send.target_tracker)
    if tx.execute(update(attachment_sends).where(where).values(**values)).rowcount == 0:
        tx.execute(insert(attachment_sends).values(**values))


def sends_of(tx: Connection, escalation_id: str) -> list[SendRow]:
    rows = tx.execute(select(attachment_sends).where(
        attachment_sends.c.escalation_id == escalation_id)).all()
    return [SendRow(**{k: r._mapping[k] for k in SendRow.__dataclass_fields__}) for r in rows]


# -- people ---------------------------------------------------------------------------------------
def cached_person(tx: Connection, tracker: str, address: str) -> Any:
    return tx.execute(select(people_cache).where(
        (people_cache.c.tracker == tracker) & (people_cache.c.address == address))).first()


def cache_person(tx: Connection, tracker: str, address: str, ref: str | None,
                 display_name: str | None, state: str, now: datetime) -> None:
    values = {"ref": ref, "display_name": display_name, "state": state, "fetched_at": now}
    where = (people_cache.c.tracker == tracker) & (people_cache.c.address == address)
    if tx.execute(update(people_cache).where(where).values(**values)).rowcount == 0:
        tx.execute(insert(people_cache).values(tracker=tracker, address=address, **values))


def address_for(tx: Connection, tracker: str, ref: str) -> str | None:
    row = tx.execute(select(people_cache.c.address).where(
        (people_cache.c.tracker == tracker) & (people_cache.c.ref == ref)
        & (people_cache.c.state == "found"))).first()
    return row[0] if row else None
