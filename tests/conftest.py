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

from core.redact import RedactingFilter  # noqa: E402  (after the path and environment above)


def _without_cli_logging(root: logging.Logger) -> None:
    """Take the CLI's logging off the root logger: the handlers ``sync._setup_logging`` installed
    (they carry the redacting filter, and write to a stream that was a test's and may be closed)
    and the filter itself from pytest's handlers (the same caplog and report handlers serve every
    test of a worker), which ``install_log_redaction`` would have put on them."""
    kept = []
    for handler in root.handlers:
        redacting = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        if not redacting:
            kept.append(handler)
        elif type(handler).__module__.startswith("_pytest"):
            handler.filters[:] = [f for f in handler.filters if f not in redacting]
            kept.append(handler)
    root.handlers[:] = kept


@pytest.fixture(autouse=True)
def _root_logger_restored():
    """A command run in this process (``sync.main``) sets the root logger up as the CLI does: its
    own stderr handler, with the redacting filter that turns a record's ``exc_info`` into
    redacted text. Each test starts without it, even when a module-scoped fixture ran a command
    before (``tests/test_trace.py`` runs ``tiersync demo`` once per module), and the root logger
    is put back after each test, so no later test's records pass through that handler (caplog
    would see them without their traceback, and the closed stream raises a logging error)."""
    root = logging.getLogger()
    _without_cli_logging(root)
    handlers, level = root.handlers[:], root.level
    yield
    _without_cli_logging(root)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def shipped():
    return ROOT / "mappings"
