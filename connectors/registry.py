"""The connector classes by ``kind``: each connector module registers its class on import.

Which modules exist and which one a configured tracker needs is wiring (``wiring.py``).
"""
from __future__ import annotations

from core.connector import Connector

REGISTRY: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    REGISTRY[cls.kind] = cls
    return cls
