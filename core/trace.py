"""``tiersync trace TRACKER:ID``: every value tiersync wrote into one record, newest first.

Read from the ``written`` audit entries of that record (one per applied create or update, see
core/provenance.py), so a trace is as tamper-evident as the log it comes from. A record may be
named by its id or by its key (``jira:ENG-7``); ``--field`` keeps one native path or model field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.engine import Connection

from core import schema as t
from core.audit import AuditLog


@dataclass(frozen=True)
class TracedValue:
    at: datetime
    run_id: str
    seq: int
    escalation_id: str | None
    record: str  # tracker:id written to
    record_version: str | None  # the record's version after the write
    path: str  # native field
    field: str | None  # model field it maps
    value: Any
    replaced: Any
    mapping: str | None  # mapping file of the record's tracker
    entry: str | None  # mapping entry the value went through
    source: str | None  # tracker:id the value came from, or "policy"
    source_version: str | None
    source_entry: str | None  # inbound mapping entry on the source's side
    source_mapping: str | None
    source_run: str | None
    rule: str | None  # "mapping" or the policy rule(s) that set it
    escalation_version: int | None

    def as_json(self) -> dict[str, Any]:
        return dict(asdict(self), at=self.at.isoformat())


def resolve_record(tx: Connection, tracker: str, ref: str) -> str:
    """The record id for ``ref``, which may be its id or its key."""
    row = tx.execute(select(t.links.c.remote_id).where(
        (t.links.c.tracker == tracker) & ((t.links.c.remote_id == ref) | (t.links.c.key == ref)))
    ).first()
    return row.remote_id if row else ref


def trace(tx: Connection, tracker: str, ref: str, field: str | None = None) -> Iterator[TracedValue]:
    remote_id = resolve_record(tx, tracker, ref)
    entries = AuditLog(key=None).query(tx, tracker=tracker, remote_id=remote_id, action="written",
                                       newest_first=True)
    for entry in entries:
        for path, item in sorted((entry["after"] or {}).items()):
            if field and field not in (path, item.get("field")):
                continue
            yield _traced(entry, tracker, remote_id, path, item)


def _traced(entry: dict[str, Any], tracker: str, remote_id: str, path: str,
            item: dict[str, Any]) -> TracedValue:
    return TracedValue(
        at=entry["at"], run_id=entry["run_id"], seq=entry["seq"],
        escalation_id=entry["escalation_id"], record=f"{tracker}:{remote_id}",
        record_version=entry["remote_version"], path=path, field=item.get("field"),
        value=item.get("value"), replaced=item.get("replaced"), mapping=entry["mapping"],
        entry=item.get("entry"), source=item.get("source"), source_version=item.get("source_version"),
        source_entry=item.get("source_entry"), source_mapping=item.get("source_mapping"),
        source_run=item.get("source_run"), rule=item.get("rule"),
        escalation_version=item.get("escalation_version"))


def describe(value: TracedValue) -> str:
    """One paragraph for the terminal: the answer to "why does this record say X?"."""
    source = value.source or "unknown"
    if value.source_version:
        source += f" version {value.source_version}"
    via = f" via {Path(value.source_mapping or '').name}: {value.source_entry}" \
        if value.source_entry else ""
    return (f"{value.at:%Y-%m-%d %H:%M:%S} run {value.run_id}  {value.path} = {value.value!r} "
            f"(was {value.replaced!r})\n"
            f"    from {source}{via}, rule {value.rule}, escalation {value.escalation_id} "
            f"v{value.escalation_version} (source run {value.source_run})\n"
            f"    through {value.mapping}: {value.entry}")
