"""The closed set of named value transforms a mapping file may use.

A transform turns one tracker value into one or more model fields (inbound) and the model back
into one tracker value (outbound). Mapping files name them as ``transform: sr_title`` or, with
arguments, ``transform: {name: tag_flag, tag: top_partner}``.
"""
from __future__ import annotations

import re
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, ValidationError

TransformSpec = Union[str, dict[str, Any]]

_SR_TITLE = re.compile(r"^\s*(?P<sr>\d{6,20})\s*[-\u2013|]\s*(?P<title>.+?)\s*$", re.S)
_TRUE = {"true", "yes", "1", "y", "on"}
_FALSE = {"false", "no", "0", "n", "off", ""}


class Transform(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def inbound(self, field: str, value: Any) -> dict[str, Any]:
        return {field: value}

    def outbound(self, escalation: Any, field: str, value: Any) -> Any:
        return value


class SrTitle(Transform):
    """Seed 000's title: ``<SR number> - <descriptive title>`` <-> sr_number + title."""

    def inbound(self, field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, str):
            return {field: value}
        match = _SR_TITLE.match(value)
        if not match:
            return {field: value.strip()}
        return {field: match["title"], "sr_number": match["sr"]}

    def outbound(self, escalation: Any, field: str, value: Any) -> Any:
        sr = getattr(escalation, "sr_number", None)
        if sr and value:
            return f"{sr} - {value}"
        return value


class CommaList(Transform):
    """Seed 000's offer ids/names: ``a, b`` <-> ["a", "b"]."""

    separator: str = ", "

    def inbound(self, field: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {field: []}
        if isinstance(value, str):
            return {field: [part.strip() for part in value.split(",") if part.strip()]}
        return {field: list(value)}

    def outbound(self, escalation: Any, field: str, value: Any) -> Any:
        if not value:
            return None
        if isinstance(value, str):
            return value  # already one text value: never join its letters
        return self.separator.join(str(v) for v in value)


class BoolText(Transform):
    """Text or picklist booleans ('True'/'False', 'yes'/'no') <-> bool."""

    true_value: Any = True
    false_value: Any = False

    def inbound(self, field: str, value: Any) -> dict[str, Any]:
        if isinstance(value, bool) or value is None:
            return {field: bool(value)}
        text = str(value).strip().lower()
        if text in _TRUE or text == str(self.true_value).lower():
            return {field: True}
        if text in _FALSE or text == str(self.false_value).lower():
            return {field: False}
        return {field: value}  # left for model validation to reject with a clear message

    def outbound(self, escalation: Any, field: str, value: Any) -> Any:
        return self.true_value if value else self.false_value


class TagFlag(Transform):
    """A tag's presence in a tag list <-> a boolean (inbound only; tags stay the tracker's)."""

    tag: str

    def inbound(self, field: str, value: Any) -> dict[str, Any]:
        return {field: self.tag in (value or [])}


class TagPrefix(Transform):
    """The first tag with a prefix, minus the prefix (``plan_enterprise`` -> enterprise)."""

    prefix: str

    def inbound(self, field: str, value: Any) -> dict[str, Any]:
        for tag in value or []:
            if isinstance(tag, str) and tag.startswith(self.prefix):
                return {field: tag[len(self.prefix):]}
        return {}

    def outbound(self, escalation: Any, field: str, value: Any) -> Any:
        return f"{self.prefix}{value}" if value not in (None, "") else None


class Registry:
    def __init__(self, **transforms: type[Transform]):
        self._by_name = transforms

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def build(self, spec: TransformSpec) -> Transform:
        if isinstance(spec, str):
            name, args = spec, {}
        else:
            args = dict(spec)
            name = args.pop("name", None)
        if name not in self._by_name:
            raise ValueError(f"unknown transform {name!r}; known: {', '.join(self.names())}")
        try:
            return self._by_name[name](**args)
        except ValidationError as exc:
            raise ValueError(f"transform {name!r}: {exc.errors()[0]['msg']} "
                             f"({'.'.join(map(str, exc.errors()[0]['loc']))})") from None


TRANSFORMS = Registry(sr_title=SrTitle, comma_list=CommaList, bool_text=BoolText,
                      tag_flag=TagFlag, tag_prefix=TagPrefix)
