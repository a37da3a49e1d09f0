"""The next-decision schedule (core/due.py) on a real PostgreSQL server (started by .ci/run)."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine

from core import schema
from tests.test_due import BREACH, WARNING, engine_over, opened, periodic, schedule

URL = os.environ.get("TIERSYNC_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.postgres,
              # .ci/run starts a server and sets the URL: under CI a missing URL fails the run
              pytest.mark.skipif(not URL and not os.environ.get("CI"),
                                 reason="TIERSYNC_TEST_POSTGRES_URL is not set (.ci/run sets it)")]


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
