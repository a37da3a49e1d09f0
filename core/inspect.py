"""Read-only views for the command line: `tiersync explain` and `tiersync status`.

Nothing here writes to a tracker or the store: explain reads one record, maps it, merges it
in memory and asks the policy what it would decide.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from core.connector import Connector
from core.decision import Observation
from core.engine import _comment
from core.mapping import Mapping
from core.model import Escalation, Link, LinkRole
from core.reconcile import apply_changes, merge, observe
from core.store import Store


def explain_record(store: Store, connector: Connector, mapping: Mapping, policy: Any,
                   owners: dict[str, str], remote_id: str, now: datetime) -> list[str]:
    from core.policy.report import explain
    record = connector.get(remote_id)
    lines = [f"record {record.ref} version {record.version}, updated {record.updated_at.isoformat()}",
             f"mapping {mapping.source}"]
    with store.transaction() as tx:
        link = store.links_for(tx, connector.name, [record.id]).get(record.id)
        stored = store.get_escalation(tx, link.escalation_id) if link else None
    observed = observe(mapping, record, link)
    lines.append("maps to: " + ", ".join(f"{k}={_show(v)}" for k, v in sorted(observed.full.items())))
    if stored is None:
        rule = mapping.starts_escalation
        if rule is None or not rule.matches(record.data):
            lines.append("not linked to an escalation, and the mapping's starts_escalation rule does "
                         "not match: tiersync ignores this record")
            return lines
        before = None
        base = Escalation(links=[Link(tracker=connector.name, remote_id=record.id, key=record.key,
                                      url=record.url, role=LinkRole.ORIGIN)], created_at=now,
                          updated_at=now)
        after = Escalation.model_validate(apply_changes(base, observed.full))
        changes = observed.full
        lines.append("not linked yet: this record would open a new escalation")
    else:
        before = stored.escalation
        changes, rejected = merge(before, stored.field_times, connector.name, observed.changes,
                                  record.updated_at, owners)
        lines.append(f"linked to {before.id} ({link.role}); changed since last seen: "
                     f"{sorted(observed.changes) or 'nothing'}")
        for name, reason in rejected.items():
            lines.append(f"ignored change of {name}: {reason}")
        after = Escalation.model_validate(apply_changes(before, changes))
    obs = Observation(tracker=connector.name, remote_id=record.id, changes=changes,
                      updated_at=record.updated_at,
                      new_comments=tuple(_comment(connector.name, c) for c in observed.new_comments),
                      opened=before is None, version=record.version)
    return lines + explain(before, after, obs, policy, now)


def _show(value: Any) -> str:
    value = getattr(value, "value", value)
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
