"""A thin wrapper around the ``jira`` library: one client, typed errors, our retry policy.

The library's ``ResilientSession`` would resend any request (POST included) on 429/503 and
sleep up to a minute between tries, and crashes on an HTTP-date ``Retry-After``. It is built
with ``max_retries=0``: its loop then returns or raises after the first response, before its
back-off code runs. ``timeout`` bounds every request. Retries happen here, through
``connectors.retry.call_with_retry``, and only for calls that are safe to repeat.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

import requests
from jira import JIRA, JIRAError
from jira.utils import json_loads

from connectors.answers import has_list, has_object, is_list, is_object, response_hook
from connectors.jira_cursor import parse_jira_time
from connectors.retry import (call_with_retry, classify_status, classify_transport,
                              watch_rate_budget)
from core.errors import ConnectorError, PermanentError, RateLimited, Retryable
from core.secrets import read_secret

log = logging.getLogger("tiersync.connectors.jira")
T = TypeVar("T")
# what each endpoint answers (../shared/specs/jira/jira-cloud-platform-v3.json); anything else
# is not Jira's API (a login or proxy page), see connectors/answers.py
JIRA_SHAPES = [
    ("GET", r"/search/jql$", has_list("issues")),
    ("POST", r"/search/jql$", has_list("issues")),
    ("POST", r"/issue/bulkfetch$", has_list("issues")),
    ("GET", r"/serverInfo$", is_object),
    ("GET", r"/field$", is_list),
    ("GET", r"/issue/[^/]+/comment$", has_list("comments")),
    ("GET", r"/issue/[^/]+/transitions$", has_list("transitions")),
    ("GET", r"/issue/[^/]+/remotelink$", is_list),
    ("GET", r"/issue/([A-Za-z][A-Za-z0-9_]*-\d+|\d+)$", has_object("fields")),
    ("GET", r".", lambda body: None if isinstance(body, (dict, list)) else is_object(body)),
]


class JiraApi:
    """HTTP access to one Jira Cloud site; no mapping, no policy."""

    def __init__(self, name: str, config: Any):
        self.name = name
        self.config = config
        self._client: JIRA | None = None
        self._lock = threading.Lock()
        self._fields: list[dict[str, Any]] | None = None
        self._myself: dict[str, Any] | None = None

    # -- the library client -------------------------------------------------------------------
    @property
    def credential(self) -> str:
        return f"{self.config.email_env}/{self.config.token_env}"

    @property
    def client(self) -> JIRA:
        with self._lock:
            if self._client is None:
                email = read_secret(self.config.email_env, tracker=self.name,
                                    purpose="the Jira account email")
                token = read_secret(self.config.token_env, tracker=self.name,
                                    purpose="the Jira API token")
                self._client = self.call("connect", lambda: self._connect(email, token))
            return self._client

    def _connect(self, email: str, token: str) -> JIRA:
        """The library client with our answer check on its session before its first request
        (``serverInfo``, read here as the library would: it decides the search endpoint)."""
        client = JIRA(server=self.config.base_url, basic_auth=(email, token), max_retries=0,
                      timeout=self.config.timeout_seconds, options={"check_update": False},
                      get_server_info=False)
        client._session.hooks["response"].append(response_hook(self.name, JIRA_SHAPES))
        # the library reads the field list on its first search (to translate JQL field names);
        # it takes ours, so that a process reads GET /field once
        client._update_fields_cache = lambda: setattr(client, "_fields_cache_value", {
            name: f["id"] for f in self.fields() for name in f.get("clauseNames") or []})
        watch_rate_budget(client._session, self.name)
        info = client.server_info()
        client._version = tuple(info.get("versionNumbers") or (0, 0, 0))
        client.deploymentType = info.get("deploymentType")
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- errors and retries -------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one library call, translating its failures into tiersync's typed errors."""
        try:
            return fn()
        except JIRAError as exc:
            raise self._from_jira_error(what, exc) from None
        except (requests.JSONDecodeError, json.JSONDecodeError) as exc:  # a proxy's error page
            raise Retryable(f"{what}: the reply was not JSON: {exc}", tracker=self.name) from None
        except Exception as exc:
            transport = classify_transport(self.name, exc)
            if transport is not None:
                raise type(transport)(f"{what}: {exc}", tracker=self.name) from None
            if isinstance(exc, requests.RequestException):  # bad URL, redirect loop...
                raise PermanentError(f"{what}: {type(exc).__name__}: {exc} (check base_url)",
                                     tracker=self.name) from None
            raise

    def retrying(self, what: str, fn: Callable[[], T]) -> T:
        """``call`` with the shared retry policy; only for calls that are safe to repeat."""
        return call_with_retry(lambda: self.call(what, fn), max_attempts=self.config.max_attempts,
                               max_wait=self.config.max_wait_seconds, what=f"{self.name}: {what}")

    def _from_jira_error(self, what: str, exc: JIRAError) -> ConnectorError:
        message = f"{what}: {(exc.text or '').strip()[:300] or 'no message'}"
        if exc.status_code is None:
            return PermanentError(message, tracker=self.name)
        headers = exc.response.headers if exc.response is not None else {}
        error = classify_status(self.name, exc.status_code, headers, message,
                                credential=self.credential)
        if isinstance(error, RateLimited) and error.retry_after is None:
            error.retry_after = _reset_seconds(headers.get("X-RateLimit-Reset"))
        return error

    # -- REST helpers (the library's session, so auth/timeout/headers stay the library's) -----
    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        client = self.client
        return client._get_json(path, params=params)

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return self._send("post", path, body)

    def put_json(self, path: str, body: dict[str, Any]) -> Any:
        return self._send("put", path, body)

    def _send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        client = self.client
        response = getattr(client._session, method)(client._get_url(path), data=json.dumps(body))
        return json_loads(response)

    # -- cached site facts --------------------------------------------------------------------
    def fields(self) -> list[dict[str, Any]]:
        if self._fields is None:
            self._fields = self.retrying("list fields", lambda: self.client.fields())
        return self._fields

    def myself(self) -> dict[str, Any]:
        if self._myself is None:
            self._myself = self.retrying("read the API user", lambda: self.client.myself())
        return self._myself


def _reset_seconds(value: str | None) -> float | None:
    """Seconds until Jira's ``X-RateLimit-Reset`` (ISO 8601, e.g. ``2026-01-05T09:01Z``)."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 17 and text.endswith("Z"):  # yyyy-MM-ddTHH:mmZ
        text = text[:-1] + ":00Z"
    try:
        when = parse_jira_time(text)
    except ValueError:
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
