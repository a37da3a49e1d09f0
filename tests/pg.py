"""The PostgreSQL server the store tests run on: .ci/run starts one and sets
TIERSYNC_TEST_POSTGRES_URL. Outside CI a missing URL skips those tests; under CI (``CI`` set)
they never skip, so a missing server fails the run instead of hiding it.

The suite runs in parallel (pytest-xdist) and these tests drop and recreate the schema they use:
each xdist worker gets a database of its own on that server (``<database>_<worker>``, created on
first use), so two workers never share one."""
import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _per_worker(url: str, worker: str) -> str:
    """``url`` with the database ``<database>_<worker>``, created when missing."""
    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


_BASE = os.environ.get("TIERSYNC_TEST_POSTGRES_URL")
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
URL = _per_worker(_BASE, _WORKER) if _BASE and _WORKER else _BASE
needs_postgres = pytest.mark.skipif(not URL and not os.environ.get("CI"),
                                    reason="TIERSYNC_TEST_POSTGRES_URL is not set (.ci/run sets it)")
