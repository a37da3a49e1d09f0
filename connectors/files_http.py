"""HTTP plumbing shared by the connectors' attachment modules: streamed reads, bounded windows.

Content is read with a plain ``requests`` session carrying the connector's credentials, not the
library's session: those sessions run tiersync's answer check (connectors/answers.py) on every
response, which reads the whole body into memory. A streamed read checks the status and the
content type itself (an HTML page where a file was expected is a login or proxy page).
"""
from __future__ import annotations

import io
from typing import Any, BinaryIO, Iterator

import requests

from connectors.retry import classify_status, classify_transport
from core.errors import NotTheApi, Retryable

CHUNK = 1 << 20  # 1 MiB


def stream_get(session: requests.Session, url: str, *, tracker: str, credential: str,
               timeout: float, headers: dict[str, str] | None = None) -> Iterator[bytes]:
    """The body of ``GET url`` in chunks; typed errors like every other call."""
    try:
        response = session.get(url, stream=True, timeout=timeout, headers=headers or {})
    except requests.RequestException as exc:
        raise (classify_transport(tracker, exc) or Retryable(str(exc), tracker=tracker)) from None
    with response:
        if response.status_code >= 400:
            raise classify_status(tracker, response.status_code, response.headers,
                                  response.text[:300], credential=credential)
        kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind == "text/html" and not url.lower().split("?")[0].endswith((".html", ".htm")):
            raise NotTheApi(f"{url.split('?')[0]}: answered an HTML page where a file was "
                            f"expected (a login or proxy page?)", tracker=tracker)
        try:
            yield from (chunk for chunk in response.iter_content(CHUNK) if chunk)
        except requests.RequestException as exc:
            raise (classify_transport(tracker, exc) or Retryable(str(exc), tracker=tracker)) from None


class Window(io.RawIOBase):
    """``length`` bytes of ``file`` from ``start``, as a file ``requests`` streams with a
    Content-Length (one chunk of a chunked upload, never read into memory at once)."""

    def __init__(self, file: BinaryIO, start: int, length: int):
        super().__init__()
        self.file, self.start, self.len, self.pos = file, start, length, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        left = self.len - self.pos
        if left <= 0:
            return b""
        size = left if size is None or size < 0 else min(size, left)
        self.file.seek(self.start + self.pos)
        data = self.file.read(size)
        self.pos += len(data)
        return data

    def __len__(self) -> int:
        return self.len


def plain_session(auth: Any) -> requests.Session:
    session = requests.Session()
    session.auth = auth
    return session
