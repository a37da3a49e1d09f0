"""Where the store's record-level methods meet the page being written (core/page_write.py).

Rules:
- while a page's transaction holds a page buffer (``tx_buffer`` name ``PAGE``), a store method
  marked ``@paged`` is answered by the buffer's method of the same name: reads from the state
  the page read in batch plus what the page wrote so far, writes into the buffer, which writes
  them with batched statements before the page commits;
- without one (any other transaction, or once the buffer is flushed) the method runs its own
  SQL; ``method.raw`` is that SQL path, for the buffer's own fall-backs.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from sqlalchemy.engine import Connection

from core import tx_buffer

PAGE = "page"  # the tx_buffer name of the page being written
F = TypeVar("F", bound=Callable[..., Any])


def paged(method: F) -> F:
    """Route ``method(store, tx, ...)`` to the page buffer of ``tx`` when there is one."""
    name = method.__name__

    @functools.wraps(method)
    def routed(store: Any, tx: Connection, *args: Any, **kwargs: Any) -> Any:
        page = tx_buffer.peek(tx, PAGE)
        if page is None:
            return method(store, tx, *args, **kwargs)
        return getattr(page, name)(tx, *args, **kwargs)

    routed.raw = method  # type: ignore[attr-defined]
    return routed  # type: ignore[return-value]
