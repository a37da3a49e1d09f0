"""The daemon's HTTP listener (``tiersync daemon --listen HOST:PORT``), on werkzeug.

One small server in a background thread with a table of routes: ``/board`` today; webhooks and
``/metrics`` register their own routes the same way. Only GET and HEAD are served on a page
route; an unknown path answers 404, another method 405. Errors inside a handler answer 500 and
are logged, never stopping the daemon.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from core.errors import ConfigError

log = logging.getLogger("tiersync.listener")
Handler = Callable[[Request], Response]


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"--listen {value!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


class Listener:
    def __init__(self, host: str, port: int):
        self.routes: dict[str, tuple[set[str], Handler]] = {}
        self.server = make_server(host, port, self._wsgi, threaded=True)
        self.thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, handler: Handler, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
        self.routes[path] = (set(methods), handler)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except HTTPException as exc:
            response = exc.get_response()
        except Exception:  # a handler's bug answers 500 and the daemon goes on
            log.exception("error serving %s", request.path)
            response = Response("internal error\n", status=500, mimetype="text/plain")
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if request.path not in self.routes:
            raise NotFound()
        methods, handler = self.routes[request.path]
        if request.method not in methods:
            raise MethodNotAllowed(valid_methods=sorted(methods))
        return handler(request)

    def start(self) -> "Listener":
        self.thread = threading.Thread(target=self.server.serve_forever, name="tiersync-listener",
                                       daemon=True)
        self.thread.start()
        log.info("listening on %s", self.address)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)
