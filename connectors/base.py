"""Former home of the connector interface, now ``core/connector.py``: names re-exported for
code not yet moved to ``core.connector`` (nothing in ``core/`` may import this module)."""
from __future__ import annotations

from connectors.registry import REGISTRY, register
from core.connector import (TIERSYNC_COMMENT_MARK, Capabilities, Connector, OriginRef, Page,
                            RemoteComment, RemoteRecord, TrackerConfig, TrackerKind,
                            UnreadableRecord)

__all__ = ["REGISTRY", "TIERSYNC_COMMENT_MARK", "Capabilities", "Connector", "OriginRef", "Page",
           "RemoteComment", "RemoteRecord", "TrackerConfig", "TrackerKind", "UnreadableRecord",
           "register"]
