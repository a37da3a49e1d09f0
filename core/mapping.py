"""Declarative mappings between a tracker's flat native view and the escalation model.

A mapping file (``mappings/<tracker>.yaml``) is data an admin edits. It is validated on load;
every error names the file, the key path inside it and the bad value.
"""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError

from core.errors import ConfigError, MappingError
from core.model import MAPPABLE_FIELDS, Escalation
from core.transforms import TRANSFORMS, Transform, TransformSpec

Direction = Literal["inbound", "outbound", "both"]


PERSON_FIELDS = frozenset({"assignee", "original_owner", "requester_alias"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldMap(_Strict):
    """How one model field maps to one tracker field path."""

    path: str
    direction: Direction = "both"
    owner: bool = False
    transform: TransformSpec | None = None
    values: dict[str, Any] | None = None  # tracker value -> model value
    outbound_values: dict[str, Any] = Field(default_factory=dict)  # model value -> tracker value
    category_path: str | None = None  # e.g. state category, used when the name is not in values
    categories: dict[str, Any] = Field(default_factory=dict)  # category -> model value
    default: Any = None  # model value for a tracker value not in ``values``
    required: bool = False  # inbound: a record without it fails to map
    # the value is a person (an address): written as this tracker's user through the user
    # directory (core/people.py); None: true for assignee, original_owner and requester_alias
    # when the tracker field is a user field (Jira assignee, Azure DevOps identity fields,
    # Zendesk assignee.email); a text field keeps the address as text
    person: bool | None = None

    @field_validator("transform")
    @classmethod
    def _known_transform(cls, spec: TransformSpec | None) -> TransformSpec | None:
        if spec is not None:
            TRANSFORMS.build(spec)
        return spec

    @property
    def inbound(self) -> bool:
        return self.direction in ("inbound", "both")

    @property
    def outbound(self) -> bool:
        return self.direction in ("outbound", "both")


class StartRule(_Strict):
    """Which unlinked records open a new escalation (absent: none do)."""

    path: str
    equals: Any = None
    contains: str | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> "StartRule":
        tests = [self.equals is not None, self.contains is not None, self.present is not None]
        if sum(tests) != 1:
            raise ValueError("give exactly one of equals, contains, present")
        return self

    def matches(self, data: dict[str, Any]) -> bool:
        value = data.get(self.path)
        if self.present is not None:
            return (value not in (None, "", [])) is self.present
        if self.contains is not None:
            if isinstance(value, (list, tuple, set)):
                return self.contains in value
            return isinstance(value, str) and self.contains in value
        return value == self.equals


class CommentsMap(_Strict):
    direction: Direction = "both"
    outbound_public: bool = False  # copies from other trackers land as internal notes


class AttachmentsMap(_Strict):
    """Files copied between trackers (core/attachments.py): ``inbound`` takes this tracker's
    files to the others, ``outbound`` brings the others' files here."""

    enabled: bool = True
    direction: Direction = "both"
    inline_images: bool = True  # a comment's inline images count as its attachments


class Mapping(_Strict):
    tracker: str  # connector kind this mapping is written for
    record_type: str = "record"
    starts_escalation: StartRule | None = None
    create_defaults: dict[str, Any] = Field(default_factory=dict)
    comments: CommentsMap = Field(default_factory=CommentsMap)
    attachments: AttachmentsMap = Field(default_factory=AttachmentsMap)
    # credentials in this tracker's text are masked when read and in text copied into it
    # (core.redact_records); false keeps its text verbatim, in the store and in copies
    redact_secrets: bool = True
    fields: dict[str, FieldMap]
    # tracker value (e.g. a Jira status) -> tracker fields a change into it must carry, such as
    # the Resolution a Jira transition screen requires: {Done: {resolution: Done}}
    transition_fields: dict[str, dict[str, str | int | float | bool]] = Field(default_factory=dict)

    # set by load_mapping, not by the file
    source: str = Field(default="<memory>", exclude=True)

    @field_validator("fields", mode="before")
    @classmethod
    def _known_fields(cls, fields: Any) -> Any:
        if isinstance(fields, dict):
            unknown = [name for name in fields if name not in MAPPABLE_FIELDS]
            if unknown:
                raise PydanticCustomError(
                    "unknown_model_field", "fields.{name}: '{name}' is not a field of the escalation "
                    "model", {"name": unknown[0]})
        return fields

    @model_validator(mode="after")
    def _check_values(self) -> "Mapping":
        problems = []
        for name, fmap in self.fields.items():
            adapter = _model_field_adapter(name)
            targets = {**(fmap.values or {}), **fmap.categories}
            for tracker_value, model_value in targets.items():
                if fmap.transform is None:
                    try:
                        adapter.validate_python(model_value)
                    except ValidationError:
                        problems.append(
                            f"fields.{name}.values.{tracker_value}: {model_value!r} is not a valid "
                            f"value for model field '{name}'")
        seen: dict[str, str] = {}
        for name, fmap in self.fields.items():
            if fmap.outbound and fmap.path in seen:
                problems.append(f"fields.{name}.path: {fmap.path!r} is already written by "
                                f"fields.{seen[fmap.path]}")
            if fmap.outbound:
                seen[fmap.path] = name
        problems += self._transition_field_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _transition_field_problems(self) -> list[str]:
        """Every ``transition_fields`` key is a tracker value some field maps, with fields."""
        known = {str(v) for f in self.fields.values()
                 for v in [*(f.values or {}), *f.outbound_values.values()]}
        problems = []
        for value, fields in self.transition_fields.items():
            if value not in known:
                problems.append(f"transition_fields.{value}: {value!r} is not a tracker value of "
                                f"any mapped field (known: {', '.join(sorted(known))})")
            elif not fields:
                problems.append(f"transition_fields.{value}: name at least one field")
        return problems

    def owned_fields(self) -> set[str]:
        return {name for name, fmap in self.fields.items() if fmap.owner}

    # -- inbound -----------------------------------------------------------------------------
    def to_model(self, data: dict[str, Any]) -> dict[str, Any]:
        """Map a flat native view to model field values (only fields present and inbound)."""
        out: dict[str, Any] = {}
        for name, fmap in self.fields.items():
            if not fmap.inbound:
                continue
            if fmap.path not in data:
                if fmap.required:
                    raise MappingError(f"{self.source}: fields.{name}: required path "
                                       f"'{fmap.path}' is missing from the record")
                continue
            out.update(self._inbound_value(name, fmap, data))
        return out

    def _inbound_value(self, name: str, fmap: FieldMap, data: dict[str, Any]) -> dict[str, Any]:
        raw = data.get(fmap.path)
        if raw in (None, "") and fmap.required:
            raise MappingError(f"{self.source}: fields.{name}: required path '{fmap.path}' is empty")
        if fmap.values is not None and raw is not None:
            value = self._lookup(name, fmap, raw, data)
        else:
            value = raw
        if fmap.transform is not None:
            try:
                return _transform(fmap.transform).inbound(name, value)
            except (TypeError, ValueError, AttributeError) as exc:
                raise MappingError(f"{self.source}: fields.{name}.transform: cannot read "
                                   f"{_short(raw)} at '{fmap.path}': {exc}") from None
        return {name: _coerce(name, value, self.source, fmap.path)}

    def _lookup(self, name: str, fmap: FieldMap, raw: Any, data: dict[str, Any]) -> Any:
        key = str(raw)
        if key in fmap.values:
            return fmap.values[key]
        lowered = {str(k).lower(): v for k, v in fmap.values.items()}
        if key.lower() in lowered:
            return lowered[key.lower()]
        category = data.get(fmap.category_path) if fmap.category_path else None
        if category is not None and str(category) in fmap.categories:
            return fmap.categories[str(category)]
        if fmap.default is not None:
            return fmap.default
        raise MappingError(f"{self.source}: fields.{name}.values: unknown {fmap.path} value "
                           f"{_short(raw)}")

    # -- outbound ----------------------------------------------------------------------------
    def to_tracker(self, escalation: Escalation, only: set[str] | None = None) -> dict[str, Any]:
        """The flat native view of the outbound fields (optionally only ``only`` model fields)."""
        out: dict[str, Any] = {}
        for name, path, transform, reverse in self._outbound_steps():
            if only is not None and name not in only:
                continue
            value = _model_value(escalation, name)
            if transform is not None:
                value = transform.outbound(escalation, name, value)
            value = _plain(value)
            if reverse is not None and value is not None:
                value = reverse(value)
            out[path] = value
        return out

    def _outbound_steps(self) -> list[tuple[str, str, Transform | None, "_Reverse | None"]]:
        """Per outbound field, in order: name, path, transform, reverse lookup; worked out once
        per ``fields`` (a mapping is not changed in place once loaded)."""
        found = _STEPS.get(id(self.fields))
        if found is None or found[0] is not self.fields:
            plan = [(name, fmap.path, _transform(fmap.transform) if fmap.transform is not None
                     else None, _Reverse(fmap) if fmap.values is not None else None)
                    for name, fmap in self.fields.items() if fmap.outbound]
            if len(_STEPS) > 256:
                _STEPS.clear()
            found = _STEPS[id(self.fields)] = (self.fields, plan)  # holds the dict: its id stays its
        return found[1]

    @staticmethod
    def _reverse(fmap: FieldMap, value: Any) -> Any:
        if str(value) in fmap.outbound_values:
            return fmap.outbound_values[str(value)]
        for tracker_value, model_value in fmap.values.items():
            if _plain(model_value) == value or str(_plain(model_value)) == str(value):
                return tracker_value
        return value

    def person_paths(self, user_field: Any = lambda path: False) -> set[str]:
        """Native paths that hold people (see ``FieldMap.person``): marked so, or unmarked
        model people fields whose path the tracker says is a user field (``user_field``)."""
        return {f.path for name, f in self.fields.items()
                if (f.person if f.person is not None else
                    name in PERSON_FIELDS and user_field(f.path))}

    def paths_for(self, names: set[str]) -> set[str]:
        return {self.fields[n].path for n in names if n in self.fields}


_BUILT: dict[str, Transform] = {}
_STEPS: dict[int, tuple[dict[str, FieldMap], list[Any]]] = {}  # id(fields) -> (fields, plan)
_AS_IS = frozenset({str, int, float, bool, type(None)})  # plain already


def _transform(spec: TransformSpec) -> Transform:
    key = repr(sorted(spec.items())) if isinstance(spec, dict) else spec
    if key not in _BUILT:
        _BUILT[key] = TRANSFORMS.build(spec)
    return _BUILT[key]


class _Reverse:
    """``Mapping._reverse`` for one field, its tables built once: the tracker value of an
    outbound model value (``outbound_values`` first, else the first of ``values`` whose model
    value equals it, as itself or as text), or the value itself."""

    def __init__(self, fmap: FieldMap):
        self.fmap = fmap
        self.outbound_values = fmap.outbound_values
        self.by_value: dict[Any, int] = {}
        self.by_text: dict[str, int] = {}
        self.unhashable: list[tuple[int, Any]] = []  # model values that are lists or dicts
        self.tracker_values = list(fmap.values)
        for index, model_value in enumerate(fmap.values.values()):
            plain = _plain(model_value)
            try:
                self.by_value.setdefault(plain, index)
            except TypeError:
                self.unhashable.append((index, plain))
            self.by_text.setdefault(str(plain), index)

    def __call__(self, value: Any) -> Any:
        text = str(value)
        if text in self.outbound_values:
            return self.outbound_values[text]
        found = [self.by_text.get(text, len(self.tracker_values))]
        try:
            found.append(self.by_value.get(value, len(self.tracker_values)))
        except TypeError:  # an unhashable value equals no hashable one
            pass
        found += [index for index, plain in self.unhashable if plain == value]
        first = min(found)
        return self.tracker_values[first] if first < len(self.tracker_values) else value


def _model_value(escalation: Escalation, name: str) -> Any:
    if name.startswith("sla."):
        _, metric, part = name.split(".")
        for key, value in escalation.sla.items():
            if key.value == metric:
                return getattr(value, part)
        return None
    return getattr(escalation, name)


def _plain(value: Any) -> Any:
    if type(value) in _AS_IS:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@functools.lru_cache(maxsize=None)
def _model_field_adapter(name: str) -> TypeAdapter:
    if name.startswith("sla."):
        from core.model import SlaMetric
        return TypeAdapter(SlaMetric.model_fields[name.split(".")[2]].annotation)
    return TypeAdapter(Escalation.model_fields[name].annotation)


def _coerce(name: str, value: Any, source: str, path: str) -> Any:
    if value is None:
        return _empty_value(name)
    try:
        if type(value) in _HASHABLE:  # the same field values come back on every record
            return _validated(name, value)
        return _model_field_adapter(name).validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise MappingError(f"{source}: fields.{name}: value {_short(value)} at '{path}' is not "
                           f"valid: {reason}") from None


_HASHABLE = frozenset({str, int, float, bool})
_IMMUTABLE = (str, int, float, bool, datetime, Enum)
_VALIDATED: dict[tuple[str, type, Any], Any] = {}


def _validated(name: str, value: Any) -> Any:
    """A scalar validated for model field ``name``. Validation is a pure function of both, and
    the same field values come back on every record: an immutable result (str, number, enum,
    datetime) is remembered (bounded); a value that fails raises each time."""
    key = (name, type(value), value)
    found = _VALIDATED.get(key, _VALIDATED)
    if found is not _VALIDATED:
        return found
    result = _model_field_adapter(name).validate_python(value)
    if result is None or isinstance(result, _IMMUTABLE):
        if len(_VALIDATED) >= 65536:
            _VALIDATED.clear()
        _VALIDATED[key] = result
    return result


def _empty_value(name: str) -> Any:
    """What an empty tracker field means for a model field: None, or its default if not optional."""
    try:
        return _model_field_adapter(name).validate_python(None)
    except ValidationError:
        if name.startswith("sla."):
            return None
        info = Escalation.model_fields[name]
        return info.get_default(call_default_factory=True)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def coerce_observation(observation: dict[str, Any], source: str = "<observation>") -> dict[str, Any]:
    """Validate transform outputs against the model's field types."""
    return {name: _coerce(name, value, source, name) for name, value in observation.items()}


# -- loading ---------------------------------------------------------------------------------
SHIPPED = Path(str(resources.files("mappings")))


def resolve_mapping_path(ref: str, base_dir: Path | None = None) -> Path:
    """A path relative to ``base_dir``, or the name of a shipped mapping ('zendesk')."""
    candidate = Path(ref)
    if not candidate.is_absolute() and base_dir is not None:
        candidate = base_dir / candidate
    if candidate.exists():
        return candidate
    shipped = SHIPPED / (ref if ref.endswith(".yaml") else f"{ref}.yaml")
    if shipped.exists():
        return shipped
    raise ConfigError(f"mapping file not found: {ref}")


def load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def _shown_value(loc: tuple, value: Any) -> str:
    """The bad value for an error line; never a secret-looking key's value, never a credential."""
    from core.config_secrets import looks_secret_key, mask_url
    from core.redact import redact_text
    if isinstance(value, (dict, list)):
        return ""
    if any(looks_secret_key(part) for part in loc):
        return " (value hidden: the key looks like a secret)"
    if isinstance(value, str):
        value = redact_text(mask_url(value))
    return f" (value: {value!r})"


def format_validation_errors(source: str, exc: ValidationError) -> list[str]:
    """One line per problem: file, dotted key path, bad value, message."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        shown = _shown_value(err["loc"], err.get("input"))
        message = err["msg"].removeprefix("Value error, ")
        if not key or message.startswith(key + "."):
            lines.append(f"{source}: {message}")  # the message names a deeper key itself
        else:
            lines.append(f"{source}: {key}: {message}{shown}")
    return lines


def load_mapping(path: Path) -> Mapping:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of keys, got {type(data).__name__}")
    problems = []
    fields = data.get("fields")
    if isinstance(fields, dict):  # every unknown field at once, and the rest still checked
        unknown = [name for name in fields if name not in MAPPABLE_FIELDS]
        problems = [f"{path}: fields.{name}: '{name}' is not a field of the escalation model"
                    for name in unknown]
        data = {**data, "fields": {k: v for k, v in fields.items() if k not in unknown}}
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        problems.extend(format_validation_errors(str(path), exc))
    if problems:
        raise ConfigError(problems)
    mapping.source = str(path)
    return mapping
