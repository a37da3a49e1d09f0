"""Rows a transaction writes in batches at its commit instead of one statement each.

Rules:
- a buffer belongs to one connection's transaction; ``buffer(tx, name, factory)`` makes or
  returns it, and the connection's ``commit`` event flushes every buffer (in the order they
  were made) just before the COMMIT, so their rows commit with the rest of the transaction;
- a savepoint rolled back drops what its buffers gathered since it began (a buffer made inside
  it entirely); a transaction rolled back, or begun afresh, drops every buffer;
- whoever reads what a buffer holds in the same transaction calls ``flush(tx, name)`` first;
- ``scope(tx)`` is a savepoint in memory: an exception inside it takes back what the buffers
  gathered since it began, without a SAVEPOINT statement. It undoes buffered rows only, so
  whatever runs inside it writes through buffers (the engine's records: core/page_write.py).

A buffer is any object with ``mark()``, ``back_to(mark)`` and ``flush(tx)``.

The page buffer (``PAGE``, core/page_write.py): while a page's transaction holds one, a store
method marked ``@paged`` is answered by the buffer's method of the same name (reads from the
state the page read in batch plus what it wrote so far; writes held for the page's batched
write); without one (any other transaction, or once it is flushed) the method runs its own SQL,
which ``method.raw`` is, for the buffer's own fall-backs.
"""
from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Any, Callable, Iterator, Protocol, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

PAGE = "page"  # the buffer of the page being written (core/page_write.py)
BUFFERS = "tiersync.tx_buffers"  # name -> buffer, in the connection's info
MARKS = "tiersync.tx_marks"  # per open savepoint: name -> mark of each buffer when it began
_listening: "weakref.WeakSet[Engine]" = weakref.WeakSet()


class Buffer(Protocol):
    def mark(self) -> Any: ...
    def back_to(self, mark: Any) -> None: ...
    def flush(self, tx: Connection) -> None: ...


B = TypeVar("B", bound=Buffer)
F = TypeVar("F", bound=Callable[..., Any])


def paged(method: F) -> F:
    """Route ``method(store, tx, ...)`` to the page buffer of ``tx`` when there is one."""
    name = method.__name__

    @functools.wraps(method)
    def routed(store: Any, tx: Connection, *args: Any, **kwargs: Any) -> Any:
        page = tx.info.get(BUFFERS, {}).get(PAGE)
        if page is None:
            return method(store, tx, *args, **kwargs)
        return getattr(page, name)(tx, *args, **kwargs)

    routed.raw = method  # type: ignore[attr-defined]
    return routed  # type: ignore[return-value]


def buffer(tx: Connection, name: str, factory: Callable[[], B]) -> B:
    """The transaction's buffer ``name``, made by ``factory`` the first time."""
    _listen(tx.engine)
    buffers = tx.info.setdefault(BUFFERS, {})
    if name not in buffers:
        buffers[name] = factory()
    return buffers[name]


def peek(tx: Connection, name: str) -> Any:
    """The buffer ``name`` if the transaction has one (no event hooks are needed to look)."""
    return tx.info.get(BUFFERS, {}).get(name)


def flush(tx: Connection, name: str | None = None) -> None:
    """Write buffer ``name`` (every buffer when None) now, inside the transaction."""
    buffers = tx.info.get(BUFFERS, {})
    for key in [name] if name is not None else list(buffers):
        pending = buffers.pop(key, None)
        for marks in tx.info.get(MARKS, []):
            marks.pop(key, None)  # written: a savepoint rolled back now takes it with it
        if pending is not None:
            pending.flush(tx)


@contextlib.contextmanager
def scope(tx: Connection) -> Iterator[None]:
    """Take back, when the block raises, what every buffer gathered inside it (see the rules)."""
    buffers = tx.info.get(BUFFERS, {})
    began = {key: b.mark() for key, b in buffers.items()}
    try:
        yield
    except BaseException:
        _back_to(tx.info.get(BUFFERS, {}), began)
        raise


def _back_to(buffers: dict[str, Any], began: dict[str, Any]) -> None:
    for key in list(buffers):
        if key in began:
            buffers[key].back_to(began[key])
        else:
            del buffers[key]


def _flush_all(conn: Connection) -> None:
    flush(conn)


def _drop(conn: Connection, *_args) -> None:
    conn.info.pop(BUFFERS, None)
    conn.info.pop(MARKS, None)


def _savepoint(conn: Connection, *_args) -> None:
    buffers = conn.info.get(BUFFERS, {})
    conn.info.setdefault(MARKS, []).append({k: b.mark() for k, b in buffers.items()})


def _release(conn: Connection, *_args) -> None:
    marks = conn.info.get(MARKS)
    if marks:
        marks.pop()


def _rollback_savepoint(conn: Connection, *_args) -> None:
    marks = conn.info.get(MARKS)
    _back_to(conn.info.get(BUFFERS, {}), marks.pop() if marks else {})


def _listen(engine: Engine) -> None:
    if engine in _listening:
        return
    _listening.add(engine)
    event.listen(engine, "commit", _flush_all)
    event.listen(engine, "rollback", _drop)
    event.listen(engine, "begin", _drop)  # nothing left over from a connection closed unfinished
    event.listen(engine, "savepoint", _savepoint)
    event.listen(engine, "release_savepoint", _release)
    event.listen(engine, "rollback_savepoint", _rollback_savepoint)
