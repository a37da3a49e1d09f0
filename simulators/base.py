"""Shared machinery of the local tracker simulators: an HTTP server on localhost, a record of
every request, and fault injection that can be changed while the server runs.

Each simulator (``simulators/zendesk.py`` …) is a :class:`Simulator` subclass that adds the
vendor's routes to ``self.app`` (Flask) and keeps its state in memory under ``self.lock``.
"""
from __future__ import annotations

import json
import logging
import math
import random
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.serving import make_server

from simulators.profile import REALISTIC, Profile

log = logging.getLogger("tiersync.simulators")


@dataclass
class FailRule:
    """Fail the next ``count`` requests whose path matches ``path`` (a regex) with ``status``."""

    path: str
    count: int
    status: int = 500
    method: str | None = None
    retry_after: float | None = None
    body: str | None = None  # answer this instead of the tracker's JSON (e.g. a login page)
    content_type: str = "text/html; charset=utf-8"
    delay_ms: float = 0.0  # hold the request this long first (a client may die meanwhile)
    # process the request, then close the connection before the reply: the write happened, the
    # client cannot know (a network cut or proxy timeout after the server's work; ``status`` unused)
    lose_reply: bool = False


@dataclass
class Faults:
    latency_ms: float = 0.0  # fixed latency added to every request
    latency_jitter_ms: float = 0.0  # plus a uniform random 0..jitter
    error_rate: float = 0.0  # fraction of requests answered 500/502/503 before processing
    rate_429: float = 0.0  # fraction answered 429 with Retry-After
    retry_after_seconds: float = 1.0
    drop_rate: float = 0.0  # fraction whose connection is closed before processing
    drop_after_rate: float = 0.0  # fraction processed, then the connection dropped (lost reply)
    rate_limit_per_minute: int = 0  # vendor-like limit; 0 = none
    fail_next: list[FailRule] = field(default_factory=list)
    seed: int | None = None

    def update(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key == "fail_next":
                self.fail_next.extend(FailRule(**rule) for rule in value)
            elif hasattr(self, key):
                setattr(self, key, value)
            else:
                raise KeyError(f"unknown fault setting {key!r}")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int = 0
    fault: str | None = None
    at: float = 0.0
    reply_lost: bool = False  # processed (a write did happen), then the connection was dropped

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE") and self.fault is None


class _Dropped(Exception):
    pass


FILE_TYPES = ("application/octet-stream", "multipart/", "image/", "video/", "audio/",
              "application/pdf", "application/zip")


def _is_file_body() -> bool:
    """A file upload (raw bytes or multipart), recorded by type and length only."""
    kind = (request.content_type or "").lower()
    path = request.path.lower()
    return request.method in ("POST", "PUT") and (
        kind.startswith(FILE_TYPES) or "/attachments" in path or "/uploads" in path)


class Simulator:
    """Base class: subclasses add routes in :meth:`add_routes` and state in :meth:`reset`."""

    name = "simulator"
    # requests whose path matches are never faulted (route discovery and the admin API)
    fault_exempt = re.compile(r"^/_sim/")

    def __init__(self, faults: Faults | None = None, profile: Profile | None = None):
        self.profile = profile or REALISTIC
        self.visible_at = 0.0  # wall time from which every change so far shows in the feeds
        self.app = Flask(f"tiersync-sim-{self.name}")
        self.lock = threading.RLock()
        self.faults = faults or Faults()
        self.requests: list[RecordedRequest] = []
        self._rng = random.Random(self.faults.seed)
        self._window: list[float] = []
        self._server = None
        self._thread: threading.Thread | None = None
        self.base_url: str | None = None
        self.reset()
        self._add_admin_routes()
        self.add_routes()
        self.app.before_request(self._before)
        self.app.after_request(self._after)

    # -- to override --------------------------------------------------------------------------
    def reset(self) -> None:
        """Empty the in-memory state."""

    def add_routes(self) -> None:
        """Register the vendor's routes on ``self.app``."""

    def seed(self, fixture: dict[str, Any]) -> None:
        """Load records from a fixture (shape defined by the subclass)."""

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data, for assertions and for the demo's account."""
        return {}

    # -- serving ------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = make_server(host, port, self.app, threaded=True)
        self._server.daemon_threads = True
        port = self._server.server_port
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sim-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Simulator":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- realism --------------------------------------------------------------------------------
    def changes_visible_after(self, vendor_seconds: float) -> None:
        """A change just made shows in the feeds only after ``vendor_seconds`` (scaled)."""
        with self.lock:
            self.visible_at = max(self.visible_at, time.time() + self.profile.seconds(vendor_seconds))

    def settle_seconds(self) -> float:
        """Seconds until every change made so far shows in the feeds (export hold-back, index
        lag); the sandbox waits that long before a cycle, as a patient person would."""
        with self.lock:
            return max(0.0, self.visible_at - time.time())

    def set_profile(self, **changes: Any) -> Profile:
        with self.lock:
            self.profile = self.profile.changed(changes)
            return self.profile

    # -- request record -----------------------------------------------------------------------
    def write_requests(self) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.is_write]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def clear_faults(self) -> None:
        """Every fault setting back to its default (no faults), rules dropped."""
        with self.lock:
            self.faults.__init__()  # type: ignore[misc]
            self._window = []

    def set_faults(self, **changes: Any) -> None:
        with self.lock:
            self.faults.update(changes)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])

    # -- fault injection ----------------------------------------------------------------------
    def _before(self) -> Response | None:
        body: Any = None
        if _is_file_body():  # uploads are streamed by their route, never read here
            body = {"content_type": request.content_type, "length": request.content_length}
        elif request.data:
            try:
                body = json.loads(request.data)
            except ValueError:
                body = request.data.decode("utf-8", "replace")
        entry = RecordedRequest(request.method, request.path, request.args.to_dict(flat=False),
                                body, at=time.time())
        g.sim_entry = entry
        with self.lock:
            self.requests.append(entry)
        if self.fault_exempt.match(request.path) or request.method == "OPTIONS":
            return None
        return self._inject_fault(entry)

    def _inject_fault(self, entry: RecordedRequest) -> Response | None:
        with self.lock:
            f = self.faults
            delay = f.latency_ms + (self._rng.uniform(0, f.latency_jitter_ms) if f.latency_jitter_ms else 0)
            rule = self._take_fail_rule(entry)
            limited = self._over_rate_limit()
            roll = self._rng.random()
            g.drop_after = self._rng.random() < f.drop_after_rate
        if delay:
            time.sleep(delay / 1000.0)
        if rule is not None and rule.lose_reply:  # recorded as a write whose reply was lost
            g.drop_after, rule = True, None
        if rule is not None:
            entry.fault = f"fail_next:{rule.status}"
            if rule.delay_ms:
                time.sleep(rule.delay_ms / 1000.0)
            if rule.body is not None:  # a proxy's or a login page's answer, not the API's
                return Response(rule.body, status=rule.status, content_type=rule.content_type)
            return self._fault_response(rule.status, rule.retry_after)
        if limited:
            entry.fault = "rate_limit"
            return self._fault_response(429, limited)
        if roll < f.drop_rate:
            entry.fault = "drop"
            self._drop_connection()
            return Response(status=500)
        roll -= f.drop_rate
        if roll < f.error_rate:
            status = self._rng.choice([500, 502, 503])
            entry.fault = f"error:{status}"
            return self._fault_response(status, None)
        roll -= f.error_rate
        if roll < f.rate_429:
            entry.fault = "429"
            return self._fault_response(429, f.retry_after_seconds)
        return None

    def _take_fail_rule(self, entry: RecordedRequest) -> FailRule | None:
        for rule in self.faults.fail_next:
            if rule.count > 0 and re.search(rule.path, entry.path) and (
                    rule.method is None or rule.method == entry.method):
                rule.count -= 1
                if rule.count == 0:
                    self.faults.fail_next.remove(rule)
                return rule
        return None

    def _over_rate_limit(self) -> float:
        """Seconds until the sliding one-minute window has room again (0: not limited)."""
        limit = self.faults.rate_limit_per_minute
        if not limit:
            return 0.0
        now = time.time()
        self._window = [t for t in self._window if now - t < 60]
        if len(self._window) >= limit:
            return float(max(1, math.ceil(60 - (now - self._window[0]))))
        self._window.append(now)
        return 0.0

    def _fault_response(self, status: int, retry_after: float | None) -> Response:
        response = jsonify({"error": "SimulatedFault", "description": f"injected HTTP {status}"})
        response.status_code = status
        if retry_after is not None:
            response.headers["Retry-After"] = str(max(0, int(round(retry_after))))
        return response

    @staticmethod
    def _drop_connection(raise_after: bool = True) -> None:
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if raise_after:
            raise _Dropped()

    def _after(self, response: Response) -> Response:
        entry = getattr(g, "sim_entry", None)
        if entry is not None:
            entry.status = response.status_code
            if getattr(g, "drop_after", False) and entry.fault is None and response.status_code < 400:
                entry.fault = None  # the write happened: keep it counted as a write
                entry.reply_lost = True
                self._drop_connection(raise_after=False)
        return response

    # -- admin API (for a running demo / chaos driver in another process) ----------------------
    def _add_admin_routes(self) -> None:
        from simulators.webhooks import install_webhooks
        app = self.app
        if self.name in ("zendesk", "jira", "azure_devops"):
            install_webhooks(self)  # outgoing webhooks, configured at /_sim/webhooks

        @app.errorhandler(_Dropped)
        def _dropped(_exc: _Dropped) -> Response:  # the socket is already closed
            return Response(status=500)

        @app.get("/_sim/faults")
        def _get_faults() -> Response:
            with self.lock:
                return jsonify(asdict(self.faults))

        @app.post("/_sim/faults")
        def _post_faults() -> Response:
            """Change fault settings: JSON with or without a content type; ``"clear": true``
            first resets every setting and rule, ``"fail_next": null`` drops the rules."""
            try:
                changes = _json_body()
                if changes.pop("clear", False):
                    self.clear_faults()
                if "fail_next" in changes and changes["fail_next"] is None:
                    changes.pop("fail_next")
                    with self.lock:
                        self.faults.fail_next.clear()
                self.set_faults(**changes)
            except (KeyError, TypeError, ValueError) as exc:
                return jsonify({"error": str(exc)}), 400
            with self.lock:
                return jsonify(asdict(self.faults))

        @app.delete("/_sim/faults")
        def _delete_faults() -> Response:
            self.clear_faults()
            with self.lock:
                return jsonify(asdict(self.faults))

        @app.get("/_sim/profile")
        def _get_profile() -> Response:
            return jsonify(asdict(self.profile))

        @app.post("/_sim/profile")
        def _post_profile() -> Response:
            try:
                return jsonify(asdict(self.set_profile(**_json_body())))
            except (KeyError, TypeError, ValueError) as exc:
                return jsonify({"error": str(exc)}), 400

        @app.get("/_sim/requests")
        def _get_requests() -> Response:
            with self.lock:
                return jsonify([asdict(r) for r in self.requests])

        @app.get("/_sim/state")
        def _get_state() -> Response:
            with self.lock:
                return jsonify(self.snapshot())

        @app.post("/_sim/seed")
        def _post_seed() -> Response:
            with self.lock:
                self.seed(request.get_json(force=True) or {})
                return jsonify({"ok": True})


def _json_body() -> dict[str, Any]:
    """The request's JSON object, whatever its content type says; {} for an empty body."""
    if not request.data.strip():
        return {}
    body = json.loads(request.data)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body
