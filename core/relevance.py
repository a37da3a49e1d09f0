"""Relevance before mapping: which records of a page the engine maps at all (issue 9).

Rules:
- A record matters when it is linked to an escalation, when it carries the idempotency key of a
  mirror tiersync created for an escalation in the store (adopted after a crash), or when its
  mapping's ``starts_escalation`` rule matches its native view. Any other record is counted as
  ignored and never mapped, so an unrelated record with a custom status or an unknown select
  value cannot be quarantined.
- Only the records that matter are completed by their connector (``load_details``: what the
  feed leaves out to save requests, such as Zendesk's comments).
- An unreadable record (the connector could not build it) is quarantined with its reason:
  without its fields nobody can tell whether it matters. The page's cursor moves past it.
"""
from __future__ import annotations

import logging
from typing import Any, Container, Iterator

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from core import schema as t
from core.connector import Page, RemoteRecord, UnreadableRecord
from core.audit import AuditEntry
from core.errors import ConnectorError, TiersyncError
from core.planner import parse_idempotency_key
from core.redact import redact

log = logging.getLogger("tiersync.engine")


def matters(engine: Any, name: str, record: RemoteRecord, linked: bool, stored: Container[str]) -> bool:
    """Whether ``record`` is linked, adoptable or starts an escalation (see the module rules)."""
    if linked:
        return True
    parsed = parse_idempotency_key(record.idempotency_key)
    if parsed and parsed[1] == name and parsed[0] in stored:
        return True
    rule = engine.mappings[name].starts_escalation
    if rule is None:
        return False
    try:
        return bool(rule.matches(record.data))
    except Exception:  # noqa: BLE001 - let the mapping step say what is wrong with the record
        return True


def relevant_records(engine: Any, name: str, latest: dict[str, RemoteRecord], links: dict[str, Any],
                     stored: dict[str, Any], report: Any) -> list[RemoteRecord]:
    """The records of a page that matter; the rest counted as ignored."""
    relevant = [r for r in latest.values() if matters(engine, name, r, r.id in links, stored)]
    report.ignored += len(latest) - len(relevant)
    return relevant


def complete_page(engine: Any, name: str, records: list[RemoteRecord]) -> list[RemoteRecord]:
    """``records`` with the ones that matter completed by their connector (``load_details``),
    read before the page's write transaction so that no request runs inside it."""
    if not records:
        return records
    with engine.store.transaction() as tx:  # which are linked, which markers name a stored one:
        links = linked_ids(tx, name, [r.id for r in records])  # ids only, nothing decoded
        parsed = (parse_idempotency_key(r.idempotency_key) for r in records)
        stored = stored_ids(tx, [p[0] for p in parsed if p and p[1] == name])
    wanted = [r for r in records if matters(engine, name, r, r.id in links, stored)]
    if not wanted:
        return records
    done = {r.id: r for r in engine.connectors[name].load_details(wanted)}
    return [done.get(r.id, r) for r in records]


_LINKED = select(t.links.c.remote_id).where(
    (t.links.c.tracker == bindparam("b_tracker"))
    & t.links.c.remote_id.in_(bindparam("b_ids", expanding=True)))
_STORED = select(t.escalations.c.id).where(t.escalations.c.id.in_(bindparam("b_ids", expanding=True)))


def linked_ids(tx: Connection, tracker: str, remote_ids: list[str]) -> set[str]:
    """Which of ``remote_ids`` of ``tracker`` have a link (read without their snapshots)."""
    if not remote_ids:
        return set()
    return set(tx.execute(_LINKED, {"b_tracker": tracker, "b_ids": sorted(set(remote_ids))}).scalars())


def stored_ids(tx: Connection, ids: list[str]) -> set[str]:
    """Which of escalations ``ids`` the store holds (read without their data)."""
    if not ids:
        return set()
    return set(tx.execute(_STORED, {"b_ids": sorted(set(ids))}).scalars())


def quarantine_unreadable(engine: Any, tx: Connection, bad: UnreadableRecord, report: Any) -> None:
    """Quarantine a record its connector could not build, with the reason naming the field."""
    reason = f"{bad.tracker}:{bad.id}: unreadable record: {bad.reason}"
    fresh = engine.store.quarantine(tx, connector=bad.tracker, remote_id=bad.id,
                                    version=bad.version, reason=redact(reason),
                                    payload=redact(bad.payload), run_id=report.run_id,
                                    now=engine.clock())
    if not fresh:
        return
    report.quarantined += 1
    log.warning("quarantined %s: %s", bad.ref, redact(reason))
    engine.audit.append(tx, AuditEntry(
        run_id=engine.planner.run_id or "-", at=engine.clock(), action="quarantined",
        escalation_id=None, tracker=bad.tracker, remote_id=bad.id, remote_version=bad.version,
        mapping=engine.mappings[bad.tracker].source if bad.tracker in engine.mappings else None,
        rule="connector.unreadable", result=redact(reason)))


def guarded_pages(name: str, pages: Iterator[Page]) -> Iterator[Page]:
    """The connector's pages; a failure of the connector that is not a tiersync error (a bug
    outside the building of one record) stops this tracker's pull as a connector error instead
    of ending the whole cycle. Errors of the engine's own page processing pass through."""
    while True:
        try:
            page = next(pages)
        except StopIteration:
            return
        except TiersyncError:
            raise
        except Exception as exc:  # noqa: BLE001 - named in the cycle report, logged with its trace
            log.exception("pulling %s failed unexpectedly", name)
            raise ConnectorError(f"unexpected {type(exc).__name__} while reading: {exc}",
                                 tracker=name) from exc
        yield page
