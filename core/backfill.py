"""Reading a tracker from a point in time, outside its sync cursor: backfill and rebuild.

Rules:
- a *scan* reads one tracker from ``since`` (``None``: from the beginning of its history) with a
  second connector built from the same configuration (its ``start_at`` moved to ``since``),
  page by page, and reconciles every record as a pull would; records changed before ``since``
  are skipped (a connector without ``start_at`` reads everything);
- each page commits its state and outbox together with the scan's own cursor (stream
  ``backfill:<since>`` of the tracker), so an interrupted backfill resumes where it stopped and
  a finished one, run again, reads only what changed since;
- nothing is sent: the actions a scan queues go out with the next run;
- the tracker's sync cursor is left alone, except that a tracker that has none yet (a fresh
  store) takes the scan's, so the next run does not read the same history again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from core.connector import Page
from core.relevance import complete_page, quarantine_unreadable

EPOCH = "epoch"


@dataclass
class ScanSummary:
    tracker: str
    pages: int = 0
    records: int = 0
    skipped_older: int = 0
    resumed: bool = False


@dataclass
class BackfillSummary:
    since: datetime | None
    trackers: list[ScanSummary] = field(default_factory=list)


def scan_connector(engine, name: str, since: datetime | None):
    """(connector, owned): one like ``engine.connectors[name]`` whose history starts at
    ``since`` (owned: close it after), or the engine's own when it has no ``start_at``."""
    from core.redact_records import redacting
    base = engine.connectors[name]
    inner = getattr(base, "inner", base)  # the connector inside the redacting wrapper
    config = inner.config
    if "start_at" not in type(config).model_fields:
        return base, False
    fresh = type(inner)(name, config.model_copy(update={"start_at": since or EPOCH}))
    return redacting({name: fresh}, engine.mappings)[name], True  # records arrive redacted


def stream_name(since: datetime | None) -> str:
    return "backfill:" + (since.isoformat() if since else EPOCH)


def scan(engine, name: str, since: datetime | None, report, *, stream: str | None,
         on_page: Callable[[str, int], None] = lambda _n, _c: None,
         keep: Callable[[object], bool] | None = None) -> ScanSummary:
    """Read and reconcile ``name`` from ``since`` (module rules); ``stream`` None: no resume."""
    summary = ScanSummary(name)
    with engine.store.transaction() as tx:
        cursor = engine.store.get_cursor(tx, name, stream) if stream else None
        sync_cursor = engine.store.get_cursor(tx, name)
    summary.resumed = cursor is not None
    connector, owned = scan_connector(engine, name, since)
    last: str | None = None
    try:
        for page in connector.fetch_changes(cursor):
            _process(engine, name, page, since, report, stream, summary, keep)
            last = page.cursor
            on_page(name, len(page.records))
    finally:
        if owned:
            connector.close()
    if sync_cursor is None and last is not None:
        with engine.store.transaction() as tx:
            engine.store.set_cursor(tx, name, "records", last, engine.clock())
    return summary


def _process(engine, name: str, page: Page, since, report, stream, summary, keep) -> None:
    records = [r for r in page.records if since is None or r.updated_at >= since]
    summary.skipped_older += len(page.records) - len(records)
    if keep is not None:
        records = [r for r in records if keep(r)]
    summary.pages += 1
    summary.records += len(records)
    records = complete_page(engine, name, records)  # as a pull does, before the transaction
    with engine.store.transaction() as tx:
        for bad in page.unreadable:
            report.pulled += 1
            quarantine_unreadable(engine, tx, bad, report)
        engine.process_records(tx, name, records, report)
        if stream:
            engine.store.set_cursor(tx, name, stream, page.cursor, engine.clock())


def backfill(engine, since: datetime, trackers: list[str], report,
             on_page: Callable[[str, int], None] = lambda _n, _c: None) -> BackfillSummary:
    """Bring in every record changed since ``since`` in ``trackers`` (module rules)."""
    engine.planner.run_id = report.run_id
    summary = BackfillSummary(since)
    for name in trackers:
        summary.trackers.append(scan(engine, name, since, report, stream=stream_name(since),
                                     on_page=on_page))
    return summary
