"""Building records one at a time, so that one bad record never stops a feed (issue 9).

Rules:
- A connector turns each raw tracker record into a :class:`RemoteRecord` through
  :func:`build_each`; whatever goes wrong while building one (a field of the wrong type, a
  missing key, any exception) becomes an :class:`UnreadableRecord` naming the tracker, the record
  id and the field, and the page goes on. A ``ConnectorError`` (a request the building made
  failed) is the tracker's failure, not the record's: it stops the pull as any other.
- The engine quarantines unreadable records in the page's transaction and moves the cursor past
  them, as for any other record of the page.
- A raw record is first checked against the connector's expected *shape* (field path -> types),
  so the reason names the field ("fields.comment: expected an object, got a list") instead of
  the exception a later line would raise. Anything the shape does not catch is reported with the
  exception and the line of the connector that raised it.
"""
from __future__ import annotations

import json
import traceback
from typing import Any, Callable, Iterable, TypeVar

from core.connector import UnreadableRecord
from core.errors import BadRecord, ConnectorError

T = TypeVar("T")
MISSING = object()
TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a number",
              float: "a number", bool: "true/false", type(None): "null"}


def lookup(raw: Any, path: str) -> Any:
    """The value at a dotted ``path`` of nested dicts (MISSING when absent); a key that itself
    contains dots (``System.State``) is matched whole."""
    if not isinstance(raw, dict):
        return MISSING
    if path in raw:
        return raw[path]
    head, _, rest = path.partition(".")
    if not rest or head not in raw:
        return MISSING
    return lookup(raw[head], rest)


def shape_problems(raw: Any, shape: dict[str, tuple[type, ...]]) -> list[str]:
    """``path: expected …, got …`` for every present field whose type is not one of its types;
    a path listed with ``MISSING`` among its types may be absent, others must be present."""
    if not isinstance(raw, dict):
        return [f"record: expected an object, got {_kind(raw)}"]
    problems = []
    for path, types in shape.items():
        value = lookup(raw, path)
        if value is MISSING:
            if MISSING not in types:
                problems.append(f"{path}: missing")
            continue
        allowed = tuple(t for t in types if isinstance(t, type))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            wanted = " or ".join(dict.fromkeys(TYPE_NAMES.get(t, t.__name__) for t in allowed))
            problems.append(f"{path}: expected {wanted}, got {_kind(value)} ({_excerpt(value)})")
    return problems


def build_each(tracker: str, raws: Iterable[T], build: Callable[[T], Any], *,
               ident: Callable[[T], tuple[str, str | None]],
               shape: dict[str, tuple[type, ...]] | None = None,
               plain: Callable[[T], Any] = lambda raw: raw) -> tuple[list[Any], list[UnreadableRecord]]:
    """(records built, unreadable records) of ``raws``, in order; never raises for one record."""
    built: list[Any] = []
    unreadable: list[UnreadableRecord] = []
    for raw in raws:
        problem = _try(raw, build, shape or {}, plain, built)
        if problem is not None:
            record_id, version = _safe_ident(ident, raw)
            unreadable.append(UnreadableRecord(tracker, record_id, version, problem,
                                               _payload(plain, raw)))
    return built, unreadable


def _try(raw: Any, build: Callable[[Any], Any], shape: dict[str, tuple[type, ...]],
         plain: Callable[[Any], Any], built: list[Any]) -> str | None:
    try:
        problems = shape_problems(plain(raw), shape) if shape else []
        if problems:
            return "; ".join(problems)
        built.append(build(raw))
        return None
    except BadRecord as exc:
        return exc.reason
    except ConnectorError:
        raise  # the tracker failed (a request made while building): not the record's fault
    except Exception as exc:  # noqa: BLE001 - any failure on one record is that record's problem
        return describe(exc)


def describe(exc: BaseException) -> str:
    """The exception and the connector line that raised it, for a quarantine reason."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f for f in reversed(frames) if "/connectors/" in f.filename.replace("\\", "/")),
                 frames[-1] if frames else None)
    place = f" (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}: {where.line})" if where else ""
    return f"cannot build the record: {type(exc).__name__}: {exc}{place}"


def _safe_ident(ident: Callable[[Any], tuple[str, str | None]], raw: Any) -> tuple[str, str | None]:
    try:
        record_id, version = ident(raw)
        return str(record_id if record_id not in (None, "") else "?"), (
            None if version is None else str(version))
    except Exception:  # noqa: BLE001 - even the id may be unreadable
        return "?", None


def _payload(plain: Callable[[Any], Any], raw: Any) -> Any:
    try:
        return json.loads(json.dumps(plain(raw), default=str))
    except Exception:  # noqa: BLE001
        return {"unprintable": repr(raw)[:500]}


def _kind(value: Any) -> str:
    return TYPE_NAMES.get(type(value), type(value).__name__)


def _excerpt(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
