"""The configuration file: one YAML file, validated with pydantic, overridable from TIERSYNC_*.

Secrets never live here: tracker sections name the environment variables that hold them
(``token_env: ZENDESK_TOKEN``). Every problem found is reported with the file and key path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping as KindTable

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.connector import TrackerConfig, TrackerKind
from core.config_secrets import inline_secret_keys, url_problems
from core.errors import ConfigError
from core.mapping import Mapping, format_validation_errors, load_mapping, load_yaml, resolve_mapping_path
from core.policy import load_policy



class EngineOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_seconds: float = Field(default=30.0, gt=0)
    max_backoff_seconds: float = Field(default=3600.0, gt=0)
    outbox_batch: int = Field(default=100, ge=1, le=1000)
    reevaluate_seconds: float = Field(default=60.0, ge=0)
    pull_retries: int = Field(default=2, ge=0, le=20)
    retry_alert_seconds: float = Field(default=3600.0, gt=0)
    concurrent_pulls: bool = True
    rate_limit_seconds: float = Field(default=60.0, gt=0)


class DaemonOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval_seconds: float = Field(default=60.0, gt=0)
    drift_check_seconds: float = Field(default=3600.0, ge=0)  # 0: no periodic drift check
    # several daemons on PostgreSQL: a killed daemon's pulls and actions pass on after this long
    lease_seconds: float = Field(default=15.0, ge=3, le=300)


class Settings(BaseSettings):
    """Top level of the configuration file; each key can be overridden by TIERSYNC_<KEY>."""

    model_config = SettingsConfigDict(env_prefix="TIERSYNC_", env_nested_delimiter="__",
                                      extra="forbid")

    store: str = "sqlite:///tiersync.db"
    policy: str = "policy"
    trackers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    engine: EngineOptions = Field(default_factory=EngineOptions)
    daemon: DaemonOptions = Field(default_factory=DaemonOptions)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        return (env_settings, init_settings)  # the environment overrides the file


@dataclass
class Config:
    path: Path
    settings: Settings
    trackers: dict[str, TrackerConfig]
    mappings: dict[str, Mapping]
    policy: Any
    problems: list[str] = field(default_factory=list)


def load_config(path: Path, kinds: KindTable[str, TrackerKind]) -> Config:
    """Load and cross-check everything; raises ConfigError listing every problem.

    ``kinds``: the tracker kinds there are, each with its section's model and field paths
    (given by the wiring, ``wiring.py``: core knows no tracker)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: configuration file not found (give --config or set TIERSYNC_CONFIG)")
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of keys")
    problems: list[str] = []
    settings = _settings(path, data, problems)
    trackers = _trackers(path, settings, problems, kinds)
    mappings = _mappings(path, trackers, problems, kinds)
    policy = _policy(path, settings, problems)
    if policy is not None:
        problems.extend(_routing_problems(path, settings, policy))
    problems.extend(_owner_problems(mappings))
    if problems:
        raise ConfigError(problems)
    return Config(path, settings, trackers, mappings, policy)


def _settings(path: Path, data: dict[str, Any], problems: list[str]) -> Settings:
    """The top-level settings; a bad key is reported and left at its default, so that the
    trackers, mappings and policy are still checked in the same run."""
    data = dict(data)
    for _ in range(len(data) + 1):
        try:
            return Settings(**data)
        except ValidationError as exc:
            problems.extend(format_validation_errors(str(path), exc))
            bad = {err["loc"][0] for err in exc.errors() if err["loc"] and err["loc"][0] in data}
            if not bad:
                break
            for key in bad:
                data.pop(key)
    return Settings.model_construct(trackers=data.get("trackers") if isinstance(
        data.get("trackers"), dict) else {})


def _trackers(path: Path, settings: Settings, problems: list[str],
              registry: KindTable[str, TrackerKind]) -> dict[str, TrackerConfig]:
    """Each tracker section validated. A section with problems still has its mapping file
    checked in the same run (it is kept unvalidated; the problems stop the configuration)."""
    out: dict[str, TrackerConfig] = {}
    if not settings.trackers:
        problems.append(f"{path}: trackers: no tracker is configured")
    for name, section in settings.trackers.items():
        where = f"{path}: trackers.{name}"
        kind = section.get("kind")
        if kind not in registry:
            problems.append(f"{where}.kind: unknown tracker kind {kind!r}; known: "
                            f"{', '.join(sorted(registry))}")
            continue
        found = _secret_problems(where, section, registry[kind].config_model)
        problems.extend(found)
        model = registry[kind].config_model
        try:
            if found:
                raise ValueError(found)
            out[name] = model.model_validate(section)
        except (ValidationError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                problems.extend(format_validation_errors(where, exc))
            if isinstance(section.get("mapping"), str):
                out[name] = model.model_construct(kind=kind, mapping=section["mapping"])
    return out


def _secret_problems(where: str, section: dict[str, Any], model: Any) -> list[str]:
    """Inline secrets and credentials inside URLs, never with their values."""
    env_keys = [k for k in model.model_fields if k.endswith("_env")]
    pointer = ", ".join(env_keys) or "a *_env setting"
    found = [f"{where}: the key '{key}' would put a secret in the configuration file, which is "
             f"refused (its value is not shown): put the secret in an environment variable and "
             f"name that variable with {pointer} (or set VARIABLE_FILE to a file holding it)"
             for key in inline_secret_keys(section)]
    return found + url_problems(where, section, env_keys)


def _mappings(path: Path, trackers: dict[str, TrackerConfig], problems: list[str],
              registry: KindTable[str, TrackerKind]) -> dict[str, Mapping]:
    out: dict[str, Mapping] = {}
    for name, tracker in trackers.items():
        try:
            mapping = load_mapping(resolve_mapping_path(tracker.mapping, path.parent))
        except ConfigError as exc:
            problems.extend(f"trackers.{name}.mapping: {p}" if "mapping file not found" in p else p
                            for p in exc.problems)
            continue
        if tracker.kind != "memory" and mapping.tracker != tracker.kind:
            problems.append(f"{mapping.source}: tracker: mapping is for {mapping.tracker!r} but "
                            f"trackers.{name} is a {tracker.kind!r} tracker")
        pattern = registry[tracker.kind].field_path_pattern
        for field_name, fmap in mapping.fields.items():
            for key, value in (("path", fmap.path), ("category_path", fmap.category_path)):
                if value and not pattern.fullmatch(value):
                    problems.append(f"{mapping.source}: fields.{field_name}.{key}: {value!r} is not a "
                                    f"{tracker.kind} field path")
        problems.extend(f"{mapping.source}: transition_fields.{value}.{p}: {p!r} is not a "
                        f"{tracker.kind} field path" for value, fields in mapping.transition_fields.items()
                        for p in fields if not pattern.fullmatch(p))
        out[name] = mapping
    return out


def _policy(path: Path, settings: Settings, problems: list[str]) -> Any:
    try:
        return load_policy(resolve_mapping_path(settings.policy, path.parent))
    except ConfigError as exc:
        problems.extend(f"policy: {p}" if "not found" in p else p for p in exc.problems)
        return None


def _routing_problems(path: Path, settings: Settings, policy: Any) -> list[str]:
    problems = []
    routing = getattr(getattr(policy, "config", None), "routing", None)
    rules = list(getattr(routing, "rules", []) or [])
    if getattr(routing, "default", None) is not None:
        rules.append(routing.default)
    for rule in rules:
        for target in getattr(rule, "mirror_to", []):
            if target not in settings.trackers:
                problems.append(f"{settings.policy}: routing rule {rule.name!r}: mirror_to names "
                                f"{target!r}, which is not a tracker in {path}")
    return problems


def _owner_problems(mappings: dict[str, Mapping]) -> list[str]:
    owners: dict[str, str] = {}
    problems = []
    for name, mapping in mappings.items():
        for field_name in mapping.owned_fields():
            if field_name in owners:
                problems.append(f"{mapping.source}: fields.{field_name}.owner: already owned by "
                                f"{owners[field_name]}'s mapping; a field has one owner")
            owners[field_name] = name
    return problems


def missing_secrets(config: Config) -> list[str]:
    """Environment variables named by the trackers that are not set (nor their _FILE)."""
    missing = []
    for name, tracker in config.trackers.items():
        dumped = tracker.model_dump()
        sections = [("", dumped)] + [(f"{key}.", value) for key, value in dumped.items()
                                     if isinstance(value, dict)]  # e.g. webhook.secret_env
        for prefix, section in sections:
            for key, value in section.items():
                if key.endswith("_env") and isinstance(value, str):
                    if not os.environ.get(value) and not os.environ.get(f"{value}_FILE"):
                        missing.append(f"trackers.{name}.{prefix}{key}: environment variable "
                                       f"{value} is not set")
    return missing
