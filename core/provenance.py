"""Where each value tiersync writes comes from, recorded for ``tiersync trace``.

Rules:
- when an escalation changes, each changed model field records its source: the tracker record
  and version that carried it through the inbound mapping entry ``fields.<name>`` (rule
  ``mapping``), or the policy rule(s) that set it (with the record whose change triggered the
  decision, if any), by which run and at which escalation version; ``*`` records the latest change;
- when a create or update is applied, one ``written`` audit entry lists, per native field path,
  the value written, what it replaced, the outbound mapping entry it went through, and that
  source (a transaction's source rows are written together at its commit). Fields without a model field (create defaults, a mirror rule's extra fields) name the
  mapping's ``create_defaults`` or the mirror rule, with the latest change as their trigger.
"""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from core import tx_buffer
from core.audit import AuditEntry, AuditLog
from core.audit_schema import field_sources
from core.decision import Decision, Observation
from core.mapping import Mapping
from core.store_exec import write
from core.model import Escalation

LATEST = "*"


def _hits(decision: Decision) -> str:
    return ",".join(f"{hit.family}.{hit.rule}" for hit in decision.hits)


def source_rows(escalation: Escalation, changed: list[str], obs: Observation | None,
                decision: Decision, mappings: dict[str, Mapping], run_id: str,
                at: datetime) -> list[dict[str, Any]]:
    """One row per changed model field, plus the ``*`` row (pure)."""
    mapping = mappings.get(obs.tracker) if obs else None
    base = {"escalation_id": escalation.id, "tracker": obs.tracker if obs else None,
            "remote_id": obs.remote_id if obs else None,
            "remote_version": obs.version if obs else None,
            "escalation_version": escalation.version, "run_id": run_id, "at": at,
            "mapping": mapping.source if mapping else None}
    rows = []
    for name in changed:
        if name in decision.changes or obs is None or name not in obs.changes:
            rule = decision.sources.get(name) or _hits(decision) or "policy"
            rows.append(dict(base, field=name, entry=None, rule=rule))
        else:
            rows.append(dict(base, field=name, entry=f"fields.{name}", rule="mapping"))
    rows.append(dict(base, field=LATEST, entry=None, rule=_hits(decision) or "mapping"))
    return rows


def record_sources(tx: Connection, escalation: Escalation, changed: list[str],
                   obs: Observation | None, decision: Decision, mappings: dict[str, Mapping],
                   run_id: str, at: datetime) -> None:
    rows = source_rows(escalation, changed, obs, decision, mappings, run_id, at)
    tx_buffer.buffer(tx, "sources", _Sources).rows.extend(rows)  # written at the commit


class _Sources:
    """The transaction's new source rows; the last per (escalation, field) wins at the flush."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def mark(self) -> int:
        return len(self.rows)

    def back_to(self, mark: int) -> None:
        del self.rows[mark:]

    def flush(self, tx: Connection) -> None:
        latest = {(row["escalation_id"], row["field"]): row for row in self.rows}
        if not latest:
            return
        # one upsert per row, replacing the whole row as a delete and insert would (opened
        # escalations have nothing to replace: a delete per field was most of this flush)
        write(tx, _upsert_sources(tx.dialect.name), list(latest.values()))


@functools.lru_cache(maxsize=4)
def _upsert_sources(dialect: str) -> Any:
    """INSERT of source rows, each replacing the stored row of its (escalation, field)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(field_sources)
    key = ("escalation_id", "field")
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={c.name: statement.excluded[c.name] for c in field_sources.c if c.name not in key})

_SOURCES_OF = select(field_sources).where(field_sources.c.escalation_id == bindparam("b_id"))
_SOURCES_AMONG = select(field_sources).where(
    (field_sources.c.escalation_id == bindparam("b_id"))
    & field_sources.c.field.in_(bindparam("b_fields", expanding=True)))


def sources_of(tx: Connection, escalation_id: str,
               fields: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The escalation's source rows by field (only ``fields`` when given)."""
    tx_buffer.flush(tx, "sources")
    if fields is None:  # statements built once (core/store_sql.py)
        rows = tx.execute(_SOURCES_OF, {"b_id": escalation_id})
    else:
        rows = tx.execute(_SOURCES_AMONG, {"b_id": escalation_id, "b_fields": sorted(set(fields))})
    return {row.field: dict(row._mapping) for row in rows}


def lineage_fields(mapping: Mapping, fields: dict[str, Any]) -> list[str]:
    """The source rows ``lineage`` may read for ``fields`` (native paths): each written model
    field, its first part (``sla`` for ``sla.close.due_at``) and the latest change."""
    by_path = {fmap.path: name for name, fmap in mapping.fields.items() if fmap.outbound}
    names = {LATEST}
    for path in fields:
        name = by_path.get(path)
        if name is not None:
            names.update((name, name.split(".")[0]))
    return sorted(names)


def _source(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"source": None, "source_version": None, "source_run": None, "rule": None,
                "source_mapping": None, "source_entry": None, "escalation_version": None}
    record = f"{row['tracker']}:{row['remote_id']}" if row["tracker"] else "policy"
    return {"source": record, "source_version": row["remote_version"],
            "source_run": row["run_id"], "rule": row["rule"], "source_mapping": row["mapping"],
            "source_entry": row["entry"], "escalation_version": row["escalation_version"]}


def lineage(mapping: Mapping, fields: dict[str, Any], replaced: dict[str, Any],
            sources: dict[str, dict[str, Any]], extra: dict[str, Any],
            action_rule: str | None) -> dict[str, dict[str, Any]]:
    """Per native path written: value, replaced value, mapping entry and source (pure)."""
    by_path = {fmap.path: name for name, fmap in mapping.fields.items() if fmap.outbound}
    out = {}
    for path, value in fields.items():
        name = by_path.get(path)
        item = {"value": value, "replaced": replaced.get(path), "field": name}
        if name is not None:
            row = sources.get(name) or sources.get(name.split(".")[0]) or sources.get(LATEST)
            item.update(_source(row), entry=f"fields.{name}")
            item["rule"] = _metric_rules(name, item["rule"])
        else:
            item.update(_source(sources.get(LATEST)))
            from_rule = path in extra and action_rule
            item.update(entry="mirror fields" if from_rule else "create_defaults",
                        rule=action_rule if from_rule else "mapping.create_defaults")
        out[path] = item
    return out


METRICS = ("acknowledgement", "first_solution", "close")


def _metric_rules(name: str, rule: str | None) -> str | None:
    """For an SLA sub-field, the rules of its own metric (the SLA step sets ``sla`` whole)."""
    parts = name.split(".")
    if rule is None or len(parts) != 3 or parts[0] != "sla":
        return rule
    rules = rule.split(",")
    others = [m for m in METRICS if m != parts[1]]
    own = [r for r in rules if not any(r.startswith(f"sla.{m}.") for m in others)]
    return ",".join(own) or rule


def record_write(tx: Connection, log: AuditLog, *, run_id: str, at: datetime, mapping: Mapping,
                 tracker: str, remote_id: str, version: str | None, escalation_id: str,
                 fields: dict[str, Any], replaced: dict[str, Any], extra: dict[str, Any],
                 rule: str | None) -> None:
    """The ``written`` audit entry of one applied create or update."""
    sources = sources_of(tx, escalation_id, lineage_fields(mapping, fields))
    items = lineage(mapping, fields, replaced, sources, extra, rule)
    log.append(tx, AuditEntry(
        run_id=run_id, at=at, action="written", escalation_id=escalation_id, tracker=tracker,
        remote_id=remote_id, remote_version=version, mapping=mapping.source, rule=rule,
        before={path: item["replaced"] for path, item in items.items()}, after=items,
        result=f"{len(items)} field(s)"))
