"""Files held by a simulator: on disk, streamed in and out, never whole in memory.

Each vendor's upload route hands its request stream to :meth:`Blobs.put`, which writes it to a
temporary directory in 1 MiB chunks, computing size and SHA-256 (for test assertions), and
refuses a file over the vendor's limit as soon as it is passed (the vendor answers 413).
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flask import Response

CHUNK = 1 << 20


class TooLarge(Exception):
    pass


@dataclass
class Blob:
    id: str
    name: str
    content_type: str
    size: int
    sha256: str
    path: Path


class Blobs:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tiersync-sim-files-"))
        self.items: dict[str, Blob] = {}

    def put(self, stream: IO[bytes], name: str, content_type: str, limit: int,
            blob_id: str | None = None) -> Blob:
        blob_id = blob_id or uuid.uuid4().hex
        path = self.dir / blob_id
        digest, size = hashlib.sha256(), 0
        with open(path, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    out.close()
                    path.unlink(missing_ok=True)
                    raise TooLarge(size)
                digest.update(chunk)
                out.write(chunk)
        blob = Blob(blob_id, name, content_type or "application/octet-stream", size,
                    digest.hexdigest(), path)
        self.items[blob_id] = blob
        return blob

    def append(self, blob: Blob, stream: IO[bytes], offset: int, limit: int) -> None:
        """Write a chunk at ``offset`` (a chunked upload); the hash is computed at the end."""
        with open(blob.path, "r+b" if blob.path.exists() else "wb") as out:
            out.seek(offset)
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                if offset + len(chunk) > limit:
                    raise TooLarge(offset + len(chunk))
                out.write(chunk)
                offset += len(chunk)
        blob.size = blob.path.stat().st_size
        blob.sha256 = file_hash(blob.path)

    def response(self, blob: Blob) -> Response:
        def chunks() -> Any:
            with open(blob.path, "rb") as handle:
                while True:
                    chunk = handle.read(CHUNK)
                    if not chunk:
                        return
                    yield chunk
        return Response(chunks(), mimetype=blob.content_type,
                        headers={"Content-Length": str(blob.size),
                                 "Content-Disposition": f'attachment; filename="{blob.name}"'})

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.items.clear()


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
