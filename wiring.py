"""Wiring beside the command line: which connector serves which tracker ``kind``, building them.

Rules:
- ``core/`` knows no tracker: it is handed the kinds (``load_config``) and the connectors
  (``build_connectors``) from here. ``connectors/`` depend on ``core/``, never the reverse.
- A kind is described *light*: its section's model and the field paths its mappings may name,
  both importable without the tracker's client library. The connector class, which imports
  zenpy, jira or azure-devops, is imported only when a connector is built, so that commands
  that never talk to a tracker (``status``, ``audit``, ``report``...) never import them.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from connectors.azure_devops_config import FIELD_PATH as AZURE_DEVOPS_PATHS, AzureDevOpsConfig
from connectors.jira_config import FIELD_PATH as JIRA_PATHS, JiraConfig
from connectors.memory import MemoryConfig
from connectors.zendesk_config import ZendeskConfig
from connectors.zendesk_view import PATH_PATTERN as ZENDESK_PATHS
from core.config import Config, load_config as load_checked_config
from core.connector import Connector, TrackerConfig


@dataclass(frozen=True)
class Kind:
    """One tracker kind: what the configuration checks, and where its connector class is."""

    config_model: type[TrackerConfig]
    field_path_pattern: re.Pattern[str]
    module: str  # defines the connector class (and imports the tracker's client library)
    class_name: str

    def connector_class(self) -> type[Connector]:
        return getattr(importlib.import_module(self.module), self.class_name)


KINDS: dict[str, Kind] = {
    "memory": Kind(MemoryConfig, Connector.field_path_pattern, "connectors.memory", "MemoryConnector"),
    "zendesk": Kind(ZendeskConfig, ZENDESK_PATHS, "connectors.zendesk", "ZendeskConnector"),
    "jira": Kind(JiraConfig, JIRA_PATHS, "connectors.jira", "JiraConnector"),
    "azure_devops": Kind(AzureDevOpsConfig, AZURE_DEVOPS_PATHS, "connectors.azure_devops",
                         "AzureDevOpsConnector"),
}


def load_config(path: Path) -> Config:
    """The configuration file checked against the tracker kinds above (ConfigError on problems)."""
    return load_checked_config(path, KINDS)


def connector_class(kind: str) -> type[Connector]:
    return KINDS[kind].connector_class()


def load_registry() -> dict[str, type[Connector]]:
    """Every connector class by kind (imports every tracker client library)."""
    return {kind: spec.connector_class() for kind, spec in KINDS.items()}


def build_connectors(config: Config, names: Iterable[str] | None = None) -> dict[str, Connector]:
    """One connector per configured tracker (or per tracker of ``names``); a connector's own
    errors (TiersyncError) propagate."""
    wanted = config.trackers if names is None else {n: config.trackers[n] for n in names}
    return {name: connector_class(tracker.kind)(name, tracker) for name, tracker in wanted.items()}


def realtime(engine: Any, policy: Any, interval: float, endpoints: dict[str, Any]) -> Any:
    """The daemon's real-time parts (core/realtime.py), with the connectors' rate-limit waits
    and budgets reported to its metrics."""
    from connectors import retry
    from core.realtime import realtime_for
    parts = realtime_for(engine, policy, interval, endpoints)
    retry.rate_limit_observers.append(parts.metrics.rate_limited)
    retry.rate_budget_observers.append(
        lambda tracker, left: parts.metrics.rate_remaining.labels(tracker).set(left))
    return parts
