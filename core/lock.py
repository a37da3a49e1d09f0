"""One tiersync process per SQLite store: a file lock beside it. A second daemon on the same
SQLite store refuses to start with a clear message, or, as a standby, waits until the holder
exits and then takes over. On PostgreSQL several daemons share the work (core/worker.py);
:meth:`StoreLock.held` still gives an exclusive advisory lock there for whoever needs one.

The lock is the operating system's (``flock``) or the database server's, so a process killed
with SIGKILL releases it at once: no stale lock files to clean up.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.config_secrets import mask_url
from core.errors import TiersyncError

ADVISORY_KEY = 0x7469657273796E63  # "tiersync"


class StoreLocked(TiersyncError):
    pass


def shares_work(url: str) -> bool:
    """Whether several daemons may run on this store together (PostgreSQL)."""
    return make_url(url).get_backend_name() == "postgresql"


class StoreLock:
    def __init__(self, url: str):
        self.url = url

    @classmethod
    def for_url(cls, url: str) -> "StoreLock":
        return cls(url)

    @contextlib.contextmanager
    def standby(self, stop: Callable[[], bool], poll: float = 1.0) -> Iterator[bool]:
        """Wait until the lock is free and hold it (yields True), or until ``stop`` (False)."""
        while True:
            lock = self.held()
            try:
                lock.__enter__()
            except StoreLocked:
                if stop():
                    yield False
                    return
                time.sleep(poll)
                continue
            try:
                yield True
            finally:
                lock.__exit__(None, None, None)
            return

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if not database or database == ":memory:":
                yield
                return
            with self._file_lock(Path(database).with_name(Path(database).name + ".lock")):
                yield
        elif parsed.get_backend_name() == "postgresql":
            with self._advisory_lock():
                yield
        else:
            yield

    @contextlib.contextmanager
    def _file_lock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                raise StoreLocked(f"the store {mask_url(self.url)} is in use by tiersync process {holder}; "
                                  "only one tiersync may run against a SQLite store (stop it first, "
                                  "or use PostgreSQL)") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _advisory_lock(self) -> Iterator[None]:
        engine = create_engine(self.url)
        with engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
            if not got:
                raise StoreLocked(f"the store {mask_url(self.url)} is in use by another tiersync process")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
        engine.dispose()
