"""The PostgreSQL server the store tests run on: .ci/run starts one and sets
TIERSYNC_TEST_POSTGRES_URL. Outside CI a missing URL skips those tests; under CI (``CI`` set)
they never skip, so a missing server fails the run instead of hiding it."""
import os

import pytest

URL = os.environ.get("TIERSYNC_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not URL and not os.environ.get("CI"),
                                    reason="TIERSYNC_TEST_POSTGRES_URL is not set (.ci/run sets it)")
