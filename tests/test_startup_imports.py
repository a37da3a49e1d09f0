"""Commands that never talk to a tracker never import the trackers' client libraries, the web
server or the chart library (issue 13: CLI start-up). Checked in a fresh interpreter through
``sys.modules``, over the shipped example configuration (real Zendesk, Jira and Azure DevOps
sections) and a small store; the start-up times themselves are in bench/startup.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["zenpy", "jira", "azure.devops", "msrest", "flask", "matplotlib"]
STORE_ONLY = [["--help"], ["audit", "--help"], ["status"], ["status", "--json"], ["audit"],
              ["audit", "--verify"], ["trace", "zendesk:1"], ["deadletters"], ["quarantine"],
              ["check"], ["report", "--from", "2026-01-01", "--to", "2026-02-01", "--format", "csv",
                          "--out", "{tmp}/report.csv"], ["board", "--out", "{tmp}/board.html"]]
# Runs each command in this one process as the ``tiersync`` script does, then lists what the
# commands imported; then builds a Zendesk connector, which must import zenpy (the probe works).
PROBE = """
import json, sys
commands, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
import sync
codes = []
for command in commands:
    sys.argv = ["tiersync", *command]
    try:
        sync.main()
        codes.append(0)
    except SystemExit as exc:
        codes.append(exc.code or 0)
imported = [m for m in heavy if m in sys.modules]
import wiring
wiring.connector_class("zendesk")
print(json.dumps({"codes": codes, "imported": imported, "after_connector": "zenpy" in sys.modules}))
"""


def test_store_only_commands_import_no_tracker_library_web_server_or_charts(tmp_path):
    commands = [[arg.replace("{tmp}", str(tmp_path)) for arg in command] for command in STORE_ONLY]
    env = dict(os.environ, TIERSYNC_CONFIG=str(ROOT / "examples" / "tiersync.yaml"),
               TIERSYNC_STORE=f"sqlite:///{tmp_path / 'store.db'}")
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands), json.dumps(HEAVY)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert [c for c in result["codes"] if c not in (0, 1)] == [], (result["codes"], done.stderr[-3000:])
    assert result["imported"] == []
    assert result["after_connector"] is True
    assert (tmp_path / "report.csv").exists() and (tmp_path / "board.html").exists()
