import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Never let a developer's real credentials or cache leak into tests.
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", str(ROOT / ".pytest_cache" / "azure-devops"))


@pytest.fixture
def shipped():
    return ROOT / "mappings"
