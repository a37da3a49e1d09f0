"""``when:`` conditions shared by routing rules, mandatory-field sets and SLA policies.

A condition maps model field names to one value or a list of values; every entry must hold
(and), any value of a list may match (or). Values are validated against the model's field types
when the policy loads, so ``severity: 5`` or ``sevrity: 1`` fail with the key path. The extra key
``origin_tracker`` matches the connector name of the escalation's origin record.
"""
from __future__ import annotations

import functools
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, TypeAdapter, ValidationError

from core.model import Escalation

ORIGIN_TRACKER = "origin_tracker"


@functools.lru_cache(maxsize=None)
def _value_adapter(name: str) -> TypeAdapter:
    """Adapter for one condition value of model field ``name`` (list fields: one element)."""
    annotation = Escalation.model_fields[name].annotation
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return TypeAdapter(annotation)


def _check_when(raw: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    checked: dict[str, tuple[Any, ...]] = {}
    for name, expected in raw.items():
        options = expected if isinstance(expected, list) else [expected]
        if name == ORIGIN_TRACKER:
            checked[name] = tuple(str(option) for option in options)
            continue
        if name not in Escalation.model_fields:
            raise ValueError(f"'{name}' is not a field of the escalation model")
        checked[name] = tuple(_typed(name, option) for option in options)
    return checked


def _typed(name: str, option: Any) -> Any:
    try:
        return _value_adapter(name).validate_python(option)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise ValueError(f"{name}: {option!r} is not a valid value: {reason}") from None


When = Annotated[dict[str, Any], AfterValidator(_check_when)]
"""A validated condition: field name -> tuple of accepted, typed values."""


def _norm(value: Any) -> Any:
    return value.casefold() if type(value) is str else value


def _actual(escalation: Escalation, name: str) -> Any:
    if name == ORIGIN_TRACKER:
        origin = escalation.origin()
        return origin.tracker if origin else None
    return getattr(escalation, name)


def mismatch(when: dict[str, tuple[Any, ...]], escalation: Escalation) -> str | None:
    """The first entry that does not hold, as ``field=actual`` text; None when all hold."""
    for name, options in when.items():
        actual = _actual(escalation, name)
        accepted = {_norm(option) for option in options}
        values = actual if isinstance(actual, list) else [actual]
        if not any(_norm(value) in accepted for value in values):
            return f"{name}={_plain(actual)!r} not in {[_plain(o) for o in options]}"
    return None


def matches(when: dict[str, tuple[Any, ...]], escalation: Escalation) -> bool:
    return mismatch(when, escalation) is None


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


def describe(when: dict[str, tuple[Any, ...]]) -> str:
    """``when`` as short text for explanations."""
    if not when:
        return "always"
    parts = []
    for name, options in when.items():
        shown = [_plain(option) for option in options]
        parts.append(f"{name}={shown[0]!r}" if len(shown) == 1 else f"{name} in {shown}")
    return " and ".join(parts)
