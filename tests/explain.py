"""The query plans of what a piece of store work sends (SQLite's EXPLAIN QUERY PLAN)."""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import event


def select_plans(store: Any, work: Callable[[Any], Any]) -> list[tuple[str, list[str]]]:
    """(statement, plan lines) of every SELECT that ``work(tx)`` sends; a result it returns is
    consumed inside the transaction (a lazy query runs too)."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))
    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        with store.transaction() as tx:
            result = work(tx)
            if result is not None and hasattr(result, "__iter__"):
                list(result)
            return [(sql, [row[-1] for row in tx.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, args)])
                    for sql, args in list(sent)]
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
