import logging
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Never let a developer's real credentials or cache leak into tests.
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", str(ROOT / ".pytest_cache" / "azure-devops"))


@pytest.fixture(autouse=True)
def _root_logger_restored():
    """A command run in this process (``sync.main``) sets the root logger up as the CLI does: its
    own stderr handler, with the redacting filter that turns a record's ``exc_info`` into
    redacted text. Put the root logger back after each test, so no later test's records pass
    through that handler (caplog would see them without their traceback)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def shipped():
    return ROOT / "mappings"
