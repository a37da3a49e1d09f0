"""`tiersync run --once` and `backfill` over the simulators report progress in their log lines
(stderr is not a terminal here); TIERSYNC_PROGRESS_SECONDS makes every page report."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.throughput import seed_tickets
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e
TIERSYNC = Path(sys.executable).with_name("tiersync")


def tiersync(box: Sandbox, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **box.env, TIERSYNC_PROGRESS_SECONDS="0.000001")
    return subprocess.run([str(TIERSYNC), *args, "--config", str(box.config_path)], env=env,
                          capture_output=True, text=True, timeout=300)


def counts(pattern: str, text: str) -> dict[str, int]:
    """tracker -> the last count a line matching ``pattern`` gave for it."""
    return {tracker: int(n) for tracker, n in re.findall(pattern, text)}


def test_run_once_and_backfill_log_progress_per_tracker(tmp_path):
    with Sandbox(tmp_path) as box:
        seed_tickets(box, 3)
        result = tiersync(box, "run", "--once")
        assert result.returncode == 0, result.stderr
        so_far = counts(r"sync progress: (\w+): (\d+) record\(s\) so far", result.stderr)
        done = counts(r"sync progress: (\w+): (\d+) record\(s\) in \d+ page\(s\), "
                      r"[\d.]+ record\(s\)/s, done", result.stderr)
        assert so_far["zendesk"] >= 3 and done["zendesk"] == so_far["zendesk"], result.stderr
        assert set(done) <= set(box.sims), done  # one line per tracker read, no other names
        result = tiersync(box, "backfill", "--since", "2020-01-01", "--tracker", "zendesk")
        assert result.returncode == 0, result.stderr
        backfilled = counts(r"backfill progress: (\w+): (\d+) record\(s\) so far", result.stderr)
        assert list(backfilled) == ["zendesk"] and backfilled["zendesk"] >= 3, result.stderr
