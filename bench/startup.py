"""How long the ``tiersync`` command takes to start, and what it imports (issue 13 item 5).

    python bench/startup.py [--runs 3] [--workdir DIR]

Runs the ``tiersync`` script beside this interpreter as a user does, over the shipped example
configuration (real Zendesk, Jira and Azure DevOps tracker sections, no secrets needed) with a
small SQLite store, and prints ``name=value`` lines:

- ``import_sync.seconds``: ``python -X importtime -c 'import sync'``, cumulative for ``sync``;
- ``cli.help_seconds``, ``cli.status_seconds``, ``cli.audit_seconds``: medians of ``--runs``
  wall times of ``tiersync audit --help``, ``tiersync status`` and ``tiersync audit``, and
  ``cli.*_cpu_seconds``, their CPU time (user + system), steadier on a shared machine;
- ``heavy.<command>=``: which of the heavy libraries (tracker clients, web server, charts,
  metrics) each of those commands imported, ``none`` when it imported none of them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("zenpy", "jira", "azure.devops", "msrest", "flask", "werkzeug", "matplotlib",
         "prometheus_client", "jinja2", "psycopg")
COMMANDS = {"help": ["audit", "--help"], "status": ["status"], "audit": ["audit"]}
# Runs one command in-process as the script does, then reports the heavy modules it imported.
PROBE = """
import json, sys
command, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["tiersync", *command]
import sync
try:
    sync.main()
except SystemExit:
    pass
heavy = [m for m in watched if m in sys.modules]
sys.stderr.write("HEAVY=" + json.dumps(heavy) + "\\n")
"""


def tiersync_script() -> str:
    return str(Path(sys.executable).with_name("tiersync"))


def environment(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TIERSYNC_CONFIG"] = str(ROOT / "examples" / "tiersync.yaml")
    env["TIERSYNC_STORE"] = f"sqlite:///{workdir / 'startup.db'}"
    env["TIERSYNC_POLICY"] = str(ROOT / "mappings" / "policy.yaml")
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``tiersync`` command."""
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run([tiersync_script(), *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"tiersync {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, children_cpu() - cpu


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    found = re.search(r"^HEAVY=(.*)$", done.stderr, re.MULTILINE)
    if not found:
        raise SystemExit(f"probe of {args} failed: {done.stderr[-2000:]}")
    return json.loads(found.group(1))


def import_sync_seconds(env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import sync"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    line = next(l for l in reversed(done.stderr.splitlines()) if l.rstrip().endswith("| sync"))
    return int(line.split("|")[1]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        env = environment(workdir)
        timed_run(["status"], env)  # creates the store
        print(f"import_sync.seconds={import_sync_seconds(env):.3f}")
        for name, command in COMMANDS.items():
            runs = [timed_run(command, env) for _ in range(args.runs)]
            print(f"cli.{name}_seconds={statistics.median(r[0] for r in runs):.3f}")
            print(f"cli.{name}_cpu_seconds={statistics.median(r[1] for r in runs):.3f}")
        for name, command in COMMANDS.items():
            print(f"heavy.{name}={','.join(heavy_imports(command, env)) or 'none'}")


if __name__ == "__main__":
    main()
