"""The next-decision schedule (core/due.py) on a real PostgreSQL server (started by .ci/run)."""
from __future__ import annotations


import pytest
from sqlalchemy import create_engine

from core import schema
from tests.test_due import BREACH, WARNING, engine_over, opened, periodic, schedule

from tests.pg import URL, needs_postgres
pytestmark = [pytest.mark.postgres, needs_postgres]


def test_due_escalations_only_after_a_restart_on_postgres(tmp_path):
    engine = create_engine(URL)
    schema.metadata.drop_all(engine)
    engine.dispose()
    engine, clock, trackers, db = opened(tmp_path, db=URL)
    assert set(schedule(engine).values()) == {WARNING}
    engine.store.close()
    fresh = engine_over(db, clock, trackers)
    clock.advance(minutes=10)
    assert periodic(fresh) == []
    clock.now = WARNING
    assert len(periodic(fresh)) == 3
    assert set(schedule(fresh).values()) == {BREACH}
    fresh.store.close()
