"""Answers that are not the API's, caught where the HTTP client reads them (issue 9).

Rules:
- A successful answer (2xx other than 204) to a GET, or to a POST that reads (search, WIQL,
  batch), must be JSON of the shape its endpoint documents; a write's answer, when it has a
  body, must be JSON.
- Anything else (an HTML login or proxy page, an empty body, JSON of another shape) raises
  :class:`NotTheApi` naming the tracker, the URL (without its query) and what came back: the
  content type and the first bytes, redacted. It is not retried; the pull stops before the
  page is processed, so the cursor does not move, and the run ends with exit code 2.
- Each connector passes its endpoints' shapes: ``(method, path regex, check)`` where ``check``
  takes the parsed JSON and returns what is wrong with it, or None.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable

import requests

from core.errors import NotTheApi
from core.redact import redact_text

Check = Callable[[Any], "str | None"]
Shape = tuple[str, str, Check]
EXCERPT = 120
READING_POSTS = re.compile(r"(search|wiql|workitemsbatch|bulkfetch)", re.I)


def has_list(key: str) -> Check:
    """A check: the answer is an object with a list under ``key``."""
    def check(body: Any) -> str | None:
        if not isinstance(body, dict):
            return f"expected an object with '{key}', got {_kind(body)}"
        if not isinstance(body.get(key), list):
            return f"expected '{key}' to be a list, got {_kind(body.get(key))}"
        return None
    return check


def has_object(key: str) -> Check:
    """A check: the answer is an object with an object under ``key``."""
    def check(body: Any) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            return f"expected an object with an object '{key}', got {_kind(body)}"
        return None
    return check


def is_list(body: Any) -> str | None:
    return None if isinstance(body, list) else f"expected a list, got {_kind(body)}"


def is_object(body: Any) -> str | None:
    return None if isinstance(body, dict) else f"expected an object, got {_kind(body)}"


def check_answer(tracker: str, response: requests.Response, shapes: Iterable[Shape] = ()) -> None:
    """Raise NotTheApi when ``response`` is a 2xx that is not the API's answer (module rules)."""
    status = response.status_code
    if not 200 <= status < 300 or status == 204:
        return
    method = (response.request.method or "GET").upper() if response.request is not None else "GET"
    reads = method in ("GET", "OPTIONS") or (method == "POST" and READING_POSTS.search(_path(response)))
    text = response.content or b""
    if not text.strip():
        if reads:
            raise _error(tracker, response, "an empty body")
        return
    try:
        body = json.loads(text)
    except ValueError:
        raise _error(tracker, response, _what(response)) from None
    if reads:
        problem = _shape_problem(method, _path(response), body, shapes)
        if problem:
            raise _error(tracker, response, f"JSON of an unexpected shape ({problem})")


def response_hook(tracker: str, shapes: Iterable[Shape] = ()) -> Callable[..., requests.Response]:
    """A ``requests`` response hook running :func:`check_answer`."""
    shapes = list(shapes)

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        check_answer(tracker, response, shapes)
        return response
    return hook


def _shape_problem(method: str, path: str, body: Any, shapes: Iterable[Shape]) -> str | None:
    for wanted_method, pattern, check in shapes:
        if wanted_method == method and re.search(pattern, path, re.I):
            return check(body)
    return None


def _error(tracker: str, response: requests.Response, what: str) -> NotTheApi:
    url = response.url.split("?", 1)[0]
    first = " ".join(response.content[:EXCERPT].decode("utf-8", "replace").split())
    shown = f": {redact_text(first)!r}" if first else ""
    return NotTheApi(f"{url} answered HTTP {response.status_code} with {what} instead of the "
                     f"API's JSON{shown}; check base_url (a login or proxy page?) and the network",
                     tracker=tracker, status=response.status_code)


def _what(response: requests.Response) -> str:
    kind = (response.headers.get("Content-Type") or "no content type").split(";")[0].strip()
    looks_html = response.content.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))
    return f"an HTML page ({kind})" if looks_html or "html" in kind else f"a non-JSON body ({kind})"


def _path(response: requests.Response) -> str:
    return requests.utils.urlparse(response.url).path


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null",
             int: "a number", float: "a number", bool: "true/false"}
    return names.get(type(value), type(value).__name__)
