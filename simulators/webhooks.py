"""Simulated outgoing webhooks: each simulator can send its vendor's webhooks to a URL.

Configured over the admin API, ``POST /_sim/webhooks`` with JSON (every key optional):

    {"url": "http://127.0.0.1:8080/webhooks/zendesk", "secret": "...",      # signing secret
     "username": "...", "password": "...", "headers": {"X-...": "..."},    # Azure DevOps auth
     "zendesk_style": "trigger" | "event",
     "drop_rate": 0.0, "duplicate_rate": 0.0, "delay_ms": 0, "delay_jitter_ms": 0,
     "reorder": false, "enabled": true, "seed": null}

``GET /_sim/webhooks`` shows the settings and every delivery (status, dropped, duplicate).
A watcher notices each change of a record (a new version or a new comment) about every 50 ms
and sends one webhook for it, as the vendor would after the write; records that existed when
webhooks were switched on send nothing until they change. Faults: a dropped webhook is never
sent (vendors give up after their retries, so receivers must not depend on webhooks); a
duplicate is sent twice; a delay holds it back; ``reorder`` sends each batch waiting at once in
random order. Body, headers and signature: ``simulators/webhook_formats.py``.
"""
from __future__ import annotations

import queue
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import requests
from flask import jsonify, request

from simulators.webhook_formats import FORMATS

WATCH_SECONDS = 0.05


@dataclass
class WebhookSettings:
    url: str | None = None
    secret: str | None = None
    username: str | None = None
    password: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    zendesk_style: str = "trigger"
    timestamp: str | None = None  # a fixed signature timestamp (to send stale webhooks)
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_ms: float = 0.0
    delay_jitter_ms: float = 0.0
    reorder: bool = False
    enabled: bool = True
    seed: int | None = None


def _zendesk_versions(sim: Any) -> dict[str, dict[str, Any]]:
    return {str(tid): {"stamp": str(row.updated_at), "comments": len(row.comments),
                       "url": f"{sim.base_url}/api/v2/tickets/{tid}.json"}
            for tid, row in sim.state.tickets.items()}


def _jira_versions(sim: Any) -> dict[str, dict[str, Any]]:
    return {issue.key: {"stamp": str(issue.updated), "comments": len(issue.comments),
                        "numeric_id": issue.id, "url": f"{sim.base_url}/rest/api/2/issue/{issue.id}"}
            for issue in list(sim.store.issues.values())}


def _azure_devops_versions(sim: Any) -> dict[str, dict[str, Any]]:
    return {str(item.id): {"stamp": str(item.current.rev), "comments": len(item.comments),
                           "rev": item.current.rev,
                           "url": f"{sim.base_url}/_apis/wit/workItems/{item.id}"}
            for item in sim.store.items.values() if item.revisions}


VERSIONS: dict[str, Callable[[Any], dict[str, dict[str, Any]]]] = {
    "zendesk": _zendesk_versions, "jira": _jira_versions, "azure_devops": _azure_devops_versions}


class WebhookSender:
    def __init__(self, sim: Any):
        self.sim = sim
        self.settings = WebhookSettings()
        self.deliveries: list[dict[str, Any]] = []
        self._seen: dict[str, dict[str, Any]] | None = None
        self._queue: "queue.Queue[dict[str, Any]]" = queue.Queue()
        self._rng = random.Random()
        self._sequence = 0
        self._started = False
        self._lock = threading.Lock()

    def configure(self, changes: dict[str, Any]) -> None:
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.settings, key):
                    raise KeyError(f"unknown webhook setting {key!r}")
                setattr(self.settings, key, value)
            self._rng = random.Random(self.settings.seed)
            with self.sim.lock:
                self._seen = VERSIONS[self.sim.name](self.sim)
            if not self._started:
                self._started = True
                threading.Thread(target=self._watch, daemon=True, name=f"hooks-{self.sim.name}").start()
                threading.Thread(target=self._deliver, daemon=True, name=f"send-{self.sim.name}").start()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"settings": {**asdict(self.settings), "secret": "***" if self.settings.secret else None,
                                 "password": "***" if self.settings.password else None},
                    "deliveries": list(self.deliveries)}

    # -- noticing changes ---------------------------------------------------------------------------
    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_SECONDS)
            try:
                with self.sim.lock:
                    now = VERSIONS[self.sim.name](self.sim)
            except (AttributeError, RuntimeError):  # state being reseeded
                continue
            with self._lock:
                before, self._seen = self._seen or {}, now
                active = self.settings.enabled and self.settings.url
            if active:
                for rid, version in now.items():
                    self._changed(rid, before.get(rid), version)

    def _changed(self, rid: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if old is not None and old["stamp"] == new["stamp"] and old["comments"] == new["comments"]:
            return
        self._sequence += 1
        commented = old is not None and new["comments"] > old["comments"]
        self._queue.put({**new, "id": rid, "created": old is None, "sequence": self._sequence,
                         "kind": "commented" if commented else "updated", "noticed": time.time()})

    # -- delivering ---------------------------------------------------------------------------------
    def _deliver(self) -> None:
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            with self._lock:
                settings = WebhookSettings(**asdict(self.settings))
                if settings.reorder:
                    self._rng.shuffle(batch)
            for event in batch:
                self._send_with_faults(event, settings)

    def _send_with_faults(self, event: dict[str, Any], settings: WebhookSettings) -> None:
        if self._rng.random() < settings.drop_rate:
            self._log(event, None, dropped=True)
            return
        copies = 2 if self._rng.random() < settings.duplicate_rate else 1
        delay = (settings.delay_ms + self._rng.uniform(0, settings.delay_jitter_ms)) / 1000
        for copy in range(copies):
            if delay:
                threading.Timer(delay, self._send, (event, settings, copy > 0)).start()
            else:
                self._send(event, settings, copy > 0)

    def _send(self, event: dict[str, Any], settings: WebhookSettings, duplicate: bool) -> None:
        body, headers = FORMATS[self.sim.name](event, asdict(settings))
        try:
            status = requests.post(settings.url, data=body, headers=headers, timeout=10).status_code
        except requests.RequestException as exc:
            status = f"error: {type(exc).__name__}"
        self._log(event, status, duplicate=duplicate)

    def _log(self, event: dict[str, Any], status: Any, *, dropped: bool = False,
             duplicate: bool = False) -> None:
        with self._lock:
            self.deliveries.append({"record": event["id"], "kind": event["kind"],
                                    "created": event["created"], "status": status,
                                    "dropped": dropped, "duplicate": duplicate,
                                    "noticed": event["noticed"], "sent": time.time()})


def install_webhooks(sim: Any) -> None:
    """Add ``sim.webhooks`` and the ``/_sim/webhooks`` admin routes to a simulator."""
    sim.webhooks = WebhookSender(sim)

    @sim.app.get("/_sim/webhooks")
    def _get_webhooks() -> Any:
        return jsonify(sim.webhooks.status())

    @sim.app.post("/_sim/webhooks")
    def _post_webhooks() -> Any:
        try:
            sim.webhooks.configure(request.get_json(force=True) or {})
        except (KeyError, TypeError) as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(sim.webhooks.status())
