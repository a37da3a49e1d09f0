"""Pure pieces of reconciliation: what changed on a record, what wins, what to write where.

No I/O here: the engine reads links and escalations, calls these functions, and stores results.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.connector import TIERSYNC_COMMENT_MARK, RemoteComment, RemoteRecord
from core.mapping import Mapping, coerce_observation
from core.model import Escalation, SlaMetricName
from core.store import LinkRow


@dataclass
class Observed:
    """A record's mapped values and what changed since tiersync last saw it."""

    full: dict[str, Any]
    changes: dict[str, Any]
    new_comments: list[RemoteComment] = field(default_factory=list)


def observe(mapping: Mapping, record: RemoteRecord, link: LinkRow | None) -> Observed:
    """Map ``record``; raises MappingError when it cannot be mapped."""
    full = coerce_observation(mapping.to_model(record.data), mapping.source)
    previous: dict[str, Any] = {}
    if link is not None and link.last_data:
        try:
            previous = coerce_observation(mapping.to_model(link.last_data), mapping.source)
        except Exception:  # the snapshot predates a mapping change: treat every field as new
            previous = {}
    changes = {k: v for k, v in full.items() if k not in previous or previous[k] != v}
    seen = set(link.seen_comments) if link else set()
    comments = []
    if mapping.comments.direction in ("inbound", "both"):
        comments = [c for c in record.comments
                    if c.id not in seen and not c.body.lstrip().startswith(TIERSYNC_COMMENT_MARK)]
    return Observed(full=full, changes=changes, new_comments=comments)


def older_version(order: str, version: str | None, than: str | None) -> bool:
    """Whether ``version`` of a record comes before ``than`` (``Capabilities.version_order``:
    "counter" or "time"); False when the order is unknown or a version does not parse."""
    if not version or not than or version == than:
        return False
    if order == "counter":
        try:
            return int(version) < int(than)
        except ValueError:
            return False
    if order == "time":
        mine, theirs = _as_datetime(version), _as_datetime(than)
        return mine is not None and theirs is not None and mine < theirs
    return False


def get_value(escalation: Escalation, name: str) -> Any:
    if name.startswith("sla."):
        _, metric, part = name.split(".")
        value = escalation.sla.get(SlaMetricName(metric))
        return getattr(value, part) if value is not None else None
    return getattr(escalation, name)


def merge(escalation: Escalation, field_times: dict[str, dict[str, str]], tracker: str,
          changes: dict[str, Any], updated_at: datetime,
          owners: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Split ``changes`` into accepted values and rejected fields with the reason.

    Field ownership decides first (a field owned by another tracker never takes this tracker's
    value); for unowned fields the newest remote update time wins.
    """
    accepted: dict[str, Any] = {}
    rejected: dict[str, str] = {}
    for name, value in changes.items():
        if _same_value(get_value(escalation, name), value):
            continue
        owner = owners.get(name)
        if owner is not None and owner != tracker:
            rejected[name] = f"owned by {owner}"
            continue
        last = field_times.get(name)
        if owner is None and last and last["tracker"] != tracker \
                and datetime.fromisoformat(last["at"]) > updated_at:
            rejected[name] = f"{last['tracker']} changed it later ({last['at']})"
            continue
        accepted[name] = value
    return accepted, rejected


def apply_changes(escalation: Escalation, changes: dict[str, Any]) -> dict[str, Any]:
    """The model's data with ``changes`` applied (``sla.<metric>.<part>`` paths included)."""
    data = escalation.model_dump()
    for name, value in changes.items():
        if name.startswith("sla."):
            _, metric, part = name.split(".")
            metrics = data.setdefault("sla", {})
            key = SlaMetricName(metric)
            metrics.setdefault(key, {})[part] = value
        else:
            data[name] = value
    return data


def stamp_field_times(field_times: dict[str, dict[str, str]], names: list[str], tracker: str,
                      at: datetime) -> dict[str, dict[str, str]]:
    out = dict(field_times)
    for name in names:
        out[name] = {"tracker": tracker, "at": at.isoformat()}
    return out


def outbound_diff(mapping: Mapping, escalation: Escalation, current: dict[str, Any] | None,
                  sent: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """Native fields whose desired value differs from what the record holds.

    ``sent`` holds values of an update whose outcome is unknown (see :func:`absorb_sent`): the
    record may hold any of them, so a field written with another value is written again.
    """
    return still_to_write(mapping.to_tracker(escalation), current, sent)


def still_to_write(fields: dict[str, Any], current: dict[str, Any] | None,
                   sent: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """The part of ``fields`` the record may not hold yet (see :func:`outbound_diff`)."""
    current = current or {}
    sent = sent or {}
    return {path: value for path, value in fields.items()
            if not same_native(current.get(path), value)
            or any(not same_native(old, value) for old in sent.get(path, ()))}


def merge_sent(sent: dict[str, list[Any]] | None, fields: dict[str, Any]) -> dict[str, list[Any]]:
    """``sent`` plus the values of one more attempt to write ``fields``."""
    out = {path: list(values) for path, values in (sent or {}).items()}
    for path, value in fields.items():
        if not any(same_native(value, old) for old in out.get(path, [])):
            out.setdefault(path, []).append(value)
    return out


def absorb_sent(snapshot: dict[str, Any] | None, data: dict[str, Any],
                sent: dict[str, list[Any]]) -> dict[str, Any]:
    """The snapshot with tiersync's own writes taken in.

    An update may have landed without tiersync knowing (its reply was lost, or the process died
    before recording it). Where the record now holds a value tiersync sent, that value is
    tiersync's own write, not a change made in the tracker: it goes into the snapshot, so the
    next comparison does not read it as a remote change (which could, e.g., move a state back).
    """
    out = dict(snapshot or {})
    for path, values in sent.items():
        if any(same_native(data.get(path), value) for value in values):
            out[path] = data.get(path)
    return out


def _same_value(a: Any, b: Any) -> bool:
    return same_native(a, b)


def same_native(a: Any, b: Any) -> bool:
    """Equal as a tracker stores them: None/''/[] alike, lists as sets, datetimes by instant.
    Values equal as they are normalise alike (``_norm`` is a function of the value), so they
    are not normalised (most fields compared are unchanged)."""
    if type(a) is type(b) and type(a) in _PLAIN and a == b:
        return True
    return _norm(a) == _norm(b)


_PLAIN = frozenset({str, int, float, bool})  # types whose == is the value's (no list vs tuple)


def _norm(value: Any) -> Any:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if hasattr(value, "value") and not isinstance(value, (dict, list)):
        value = value.value  # enums
    if isinstance(value, datetime):
        return ("dt", value.timestamp())
    if isinstance(value, str):
        parsed = _as_datetime(value)
        return ("dt", parsed.timestamp()) if parsed else value.strip()
    if isinstance(value, (list, tuple, set)):
        return tuple(sorted(json.dumps(_norm(v), default=str) for v in value))
    if isinstance(value, dict):
        return json.dumps({k: _norm(v) for k, v in value.items()}, sort_keys=True, default=str)
    return value


def _as_datetime(text: str) -> datetime | None:
    if len(text) < 16 or text[4] != "-" or "T" not in text[:11]:
        return None
    candidate = text.replace("Z", "+00:00")
    if len(candidate) > 5 and candidate[-5] in "+-" and candidate[-3] != ":":
        candidate = candidate[:-2] + ":" + candidate[-2:]  # Jira's +0000
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
