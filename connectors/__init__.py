"""Tracker connectors, one module per tracker, in a plain registry keyed by ``kind``.

The command line picks connectors through ``wiring.py``, which imports only the configured
kinds' modules; ``load_registry`` imports all of them (and every tracker client library)."""
from __future__ import annotations

import importlib

from core.connector import Connector
from connectors.registry import REGISTRY

_MODULES = ("connectors.memory", "connectors.zendesk", "connectors.jira", "connectors.azure_devops")


def load_registry() -> dict[str, type[Connector]]:
    """Import every connector module (each registers itself) and return the registry."""
    for module in _MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return REGISTRY
