"""Writes on the hot paths handed to the database driver as they are (issue 11 item 3).

SQLAlchemy executes a prebuilt statement at the cost of its cache key, a compiled-cache lookup
and, per parameter set, a parameter dict built and run through each column's bind processor
(``construct_params``): on the page's batched inserts (about forty field-source rows per opened
escalation) and the outbox's per-action updates that was a quarter of the CPU. ``write`` runs
such a statement through ``Connection.exec_driver_sql`` instead.

Rules:
- the statement is compiled once per dialect and set of parameter names, by SQLAlchemy itself;
  each value goes through the bind processor SQLAlchemy would have applied (the column type's,
  ``UTCDateTime`` and the JSON serialiser included), and literal values of the statement are
  bound as SQLAlchemy binds them: the rows written are the same;
- only a plain INSERT, UPDATE or DELETE takes this path: one with RETURNING, Python-side column
  defaults, expanding (IN) or literal-execute parameters goes through ``Connection.execute`` as
  before (``tests/test_store_exec.py`` checks both paths write the same rows);
- the connection's events fire as for any statement (``before_cursor_execute``: the bench's and
  the tests' statement counters see it), and the result's ``rowcount`` is the driver's, which is
  what the version-checked batched UPDATE reads.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Driver:
    sql: str
    names: tuple[str, ...]  # bind names in the statement's order
    escaped: tuple[str, ...]  # the same as the SQL text names them (named paramstyles)
    given: tuple[bool, ...]  # per name: taken from the parameter set, else the literal below
    literals: tuple[Any, ...]  # processed values of the statement's own binds
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool


def write(tx: Connection, statement: ClauseElement,
          params: dict[str, Any] | list[dict[str, Any]]) -> CursorResult:
    """``tx.execute(statement, params)`` for an INSERT, UPDATE or DELETE, run by the driver."""
    rows = params if isinstance(params, list) else [params]
    if not rows:
        raise ValueError("write() needs at least one parameter set")
    many = isinstance(params, list)
    driver = _prepared(statement, tx.dialect, tuple(sorted(rows[0])), many)
    if driver is None:
        return tx.execute(statement, params)
    bound = [_bind(driver, row) for row in rows]
    return tx.exec_driver_sql(driver.sql, bound if many else bound[0])


def _bind(driver: _Driver, row: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
    values = []
    for name, given, literal, process in zip(driver.names, driver.given, driver.literals,
                                             driver.processors):
        if not given:
            values.append(literal)
            continue
        value = row[name]  # None too: SQLAlchemy's JSON type writes it as JSON null
        values.append(process(value) if process is not None else value)
    if driver.positional:
        return tuple(values)
    return dict(zip(driver.escaped, values))


@lru_cache(maxsize=256)
def _prepared(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...],
              many: bool = True) -> _Driver | None:
    """The statement compiled for ``dialect`` with ``keys`` given, or None: not for this path.
    A single-row INSERT that SQLAlchemy would give an implicit RETURNING (PostgreSQL, to read
    the new primary key) is not; as ``executemany`` SQLAlchemy compiles it without one."""
    if not getattr(statement, "is_dml", False):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=many)
    if (compiled.returning or compiled.insert_prefetch or compiled.update_prefetch
            or compiled.literal_execute_params or compiled.post_compile_params):
        return None
    names = tuple(compiled.positiontup) if compiled.positiontup is not None \
        else tuple(compiled.bind_names.values())
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    given, literals, processors = [], [], []
    for name in names:
        bind = by_name[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name in keys:
            given.append(True)
            literals.append(None)
        elif bind.callable is None and not bind.required:
            given.append(False)
            value = bind.value
            literals.append(process(value) if process is not None else value)
        else:
            return None  # a parameter the row does not give: SQLAlchemy raises its own error
        processors.append(process)
    return _Driver(sql=compiled.string, names=names,
                   escaped=tuple(compiled.escaped_bind_names.get(n, n) for n in names),
                   given=tuple(given), literals=tuple(literals), processors=tuple(processors),
                   positional=compiled.positiontup is not None)
