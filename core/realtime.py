"""Wiring of the daemon's real-time parts: metrics, health, webhook hints and their routes.

Built only when the daemon listens (``--listen``); without it the daemon polls as before.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.readiness import Health, health_routes
from core.hints import HintQueue
from core.metrics import Metrics, metrics_route
from core.observed import ObservedConnector
from core.webhook_route import WebhookEndpoint, webhook_routes


@dataclass
class Realtime:
    metrics: Metrics
    health: Health
    hints: HintQueue
    endpoints: dict[str, WebhookEndpoint]
    trackers: list[str]

    def install(self, listener: Any) -> None:
        """Register /metrics, /healthz, /readyz and one /webhooks/<tracker> per tracker."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        metrics_route(listener, self.metrics, self.health)
        health_routes(listener, self.health)
        webhook_routes(listener, self.trackers, self.endpoints, self.hints, self.metrics)


def realtime_for(engine: Any, policy: Any, interval: float,
                 endpoints: dict[str, WebhookEndpoint]) -> Realtime:
    """Observe ``engine``'s connectors (the wiring adds the rate-limit waits of their retries:
    ``wiring.realtime``)."""
    metrics = Metrics(engine.store, policy)
    health = Health(engine.store, interval)
    engine.connectors = {name: ObservedConnector(c, metrics, health)
                         for name, c in engine.connectors.items()}
    return Realtime(metrics, health, HintQueue(), endpoints, list(engine.connectors))
