"""``core.store_exec.write`` writes what ``Connection.execute`` writes, on SQLite and PostgreSQL.

Each case runs the same statements with the same parameters once through SQLAlchemy's
``execute`` and once through ``write`` (the driver path), each on a fresh store, and compares
every row of the tables written, column by column, as the store reads them back (JSON, UTC
datetimes, NULLs and JSON nulls included)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, insert, select, text

from core import schema as t, store_sql as q
from core.audit_schema import field_sources
from core.outbox_queue import _insert_new
from core.provenance import _upsert_sources
from core.store import Store
from core.store_exec import _prepared, write

from tests.pg import URL, needs_postgres

NOW = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=5, microseconds=7)


def _escalation(n: int, version: int = 1) -> dict:
    return {"id": f"esc-{n}", "version": version, "state": "open",
            "data": {"title": f"case {n}", "tags": ["a", "ü"], "none": None},
            "field_times": {"title": {"tracker": "zendesk", "at": NOW.isoformat()}},
            "created_at": NOW, "updated_at": NOW, "next_decision_at": None if n % 2 else LATER}


def _action(n: int, **extra) -> dict:
    return dict({"escalation_id": f"esc-{n}", "connector": "jira", "kind": "comment",
                 "remote_id": None, "payload": {"body": f"note {n}"}, "dedupe_key": f"k-{n}",
                 "rule": None, "state": "pending", "attempts": 0, "next_attempt_at": NOW,
                 "last_error": None, "result": None, "created_at": NOW, "updated_at": NOW}, **extra)


def _source(n: int, field: str, rule: str) -> dict:
    return {"escalation_id": f"esc-{n}", "field": field, "tracker": "zendesk", "remote_id": str(n),
            "remote_version": "3", "escalation_version": 1, "run_id": "run-1", "at": NOW,
            "mapping": "mappings/zendesk.yaml", "entry": None, "rule": rule}


def _steps(tx, run):
    """The writes of a page and an outbox pass, run with ``run(tx, statement, params)``."""
    run(tx, q.INSERT_ESCALATION, [_escalation(n) for n in range(5)])
    counts = [run(tx, q.UPDATE_ESCALATION,
                  [dict(_escalation(n, 2), b_id=f"esc-{n}", b_version=1) for n in range(3)]
                  + [dict(_escalation(4, 9), b_id="esc-4", b_version=7)]).rowcount]
    run(tx, _insert_new(tx.dialect.name), [_action(n) for n in range(4)])
    run(tx, _insert_new(tx.dialect.name), [_action(1, payload={"body": "refused"})])  # same key
    counts.append(run(tx, q.UPDATE_ACTION, {"b_id": 2, "result": {"sent": {"x": 1}},
                                            "updated_at": LATER}).rowcount)
    counts.append(run(tx, q.UPDATE_ACTION, {"b_id": 3, "state": "done", "last_error": None,
                                            "result": None, "updated_at": LATER}).rowcount)
    upsert = _upsert_sources(tx.dialect.name)
    run(tx, upsert, [_source(n, f, "mapping") for n in range(3) for f in ("title", "*")])
    run(tx, upsert, [_source(1, "title", "policy.route")])  # replaces the stored row
    return counts


def _contents(store: Store) -> dict[str, list[tuple]]:
    with store.engine.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(
                    select(table).order_by(*table.primary_key.columns))]
                for table in (t.escalations, t.outbox, field_sources)}


def _all_take_the_driver_path(dialect) -> None:
    name = dialect.name
    for statement, row in ((q.INSERT_ESCALATION, _escalation(1)),
                           (q.UPDATE_ESCALATION, dict(_escalation(1), b_id="x", b_version=1)),
                           (_insert_new(name), _action(1)), (_upsert_sources(name), _source(1, "*", "r")),
                           (q.UPDATE_ACTION, {"b_id": 1, "result": None, "updated_at": NOW})):
        assert _prepared(statement, dialect, tuple(sorted(row))) is not None, statement


def _both(url_of):
    written = []
    for run in (lambda tx, s, p: tx.execute(s, p), write):
        store = Store(url_of())
        store.migrate()
        try:
            _all_take_the_driver_path(store.engine.dialect)
            with store.transaction() as tx:
                counts = _steps(tx, run)
            written.append((counts, _contents(store)))
        finally:
            store.close()
    return written


def _check(written) -> None:
    (counts, rows), (fast_counts, fast_rows) = written
    assert fast_counts == counts == [3, 1, 1]  # the stale version's row not updated
    assert fast_rows == rows
    assert len(rows["escalations"]) == 5 and len(rows["outbox"]) == 4
    assert rows["outbox"][1][5] == {"body": "note 1"}  # the refused duplicate left it alone


def test_the_driver_path_writes_what_sqlalchemy_writes_on_sqlite(tmp_path):
    paths = iter(("a", "b"))
    _check(_both(lambda: f"sqlite:///{tmp_path / next(paths)}.db"))


@needs_postgres
def test_the_driver_path_writes_what_sqlalchemy_writes_on_postgresql():
    def fresh():
        store = Store(URL)
        with store.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        store.close()
        return URL
    _check(_both(fresh))


def test_statements_the_driver_path_cannot_run_go_through_sqlalchemy(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    dialect = store.engine.dialect
    row = _action(1)
    defaults_left = {k: v for k, v in row.items() if k not in ("state", "attempts")}
    assert _prepared(q.upsert_action("sqlite"), dialect, tuple(sorted(row))) is None  # RETURNING
    assert _prepared(insert(t.outbox), dialect, tuple(sorted(defaults_left))) is None  # defaults
    assert _prepared(q.ESCALATIONS, dialect, ("b_ids",)) is None  # not a write
    assert _prepared(q.UPDATE_ACTION, dialect, ("b_id", "state", "updated_at")) is not None
    with store.transaction() as tx:
        new_id = write(tx, q.upsert_action("sqlite"), row).scalar()
        write(tx, insert(t.outbox), dict(defaults_left, dedupe_key="k-2"))
    with store.engine.connect() as conn:
        stored = conn.execute(select(t.outbox.c.id, t.outbox.c.state, t.outbox.c.attempts)
                              .order_by(t.outbox.c.id)).all()
    assert [tuple(r) for r in stored] == [(new_id, "pending", 0), (new_id + 1, "pending", 0)]
    store.close()


def test_the_statement_counters_see_the_driver_path(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    seen = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, params, context, many: seen.append(many))
    with store.transaction() as tx:
        write(tx, q.INSERT_ESCALATION, [_escalation(n) for n in range(3)])
        write(tx, q.UPDATE_ACTION, {"b_id": 1, "updated_at": NOW})
    assert seen[-2:] == [True, False]  # one executemany, then one statement
    store.close()


def test_a_missing_parameter_is_sqlalchemys_error(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    with pytest.raises(Exception, match="b_version"):
        with store.transaction() as tx:
            write(tx, q.UPDATE_ESCALATION, {"b_id": "esc-1", "version": 2})
    store.close()
