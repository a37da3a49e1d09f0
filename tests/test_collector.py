"""The command line runs with the collector's thresholds of core/collector.py (a long sync's
full collections were 13 % of an update wave at N = 10,000, bench/engine.py)."""
import gc
import subprocess
import sys
from pathlib import Path

from core import collector

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import gc, sys
import sync
sys.argv = ["tiersync", "--version"]
try:
    sync.main()
except SystemExit:
    pass
print("thresholds", *gc.get_threshold())
"""


def test_the_command_line_sets_the_collectors_thresholds():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    line = next(line for line in out.splitlines() if line.startswith("thresholds"))
    assert tuple(int(v) for v in line.split()[1:]) == collector.THRESHOLDS
    assert collector.THRESHOLDS[0] > gc.get_threshold()[0]  # not the interpreter's default


def test_tune_sets_them():
    before = gc.get_threshold()
    try:
        collector.tune()
        assert gc.get_threshold() == collector.THRESHOLDS
    finally:
        gc.set_threshold(*before)
