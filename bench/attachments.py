"""Memory and requests of moving attachments between the trackers, over the local simulators.

    python bench/attachments.py [--mb 50]

An escalated Zendesk ticket gets a comment with a file of ``--mb`` MB; one ``tiersync run
--once`` (a separate process, as cron runs it) copies it to Azure DevOps (chunked: the file is
larger than ``attachment_chunk_bytes``) and Jira (the site's upload limit raised to take it).
Its peak resident memory (``ru_maxrss`` of the child) is printed beside a cycle that moved a
small file, so the difference is what the big file cost. Then a small file moves each way and
the requests each tracker answered for one file are counted (source read, upload, relation or
note). Prints ``name=value`` lines.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.sandbox import Sandbox  # noqa: E402
from tests.e2e_files_helpers import cli_env, cycle, issue, open_case, tiersync_script  # noqa: E402

FILE_PATHS = ("/attachments", "/uploads", "/attachment/content/")


def run_once(box: Sandbox) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one ``tiersync run --once`` child process."""
    box.settle()
    box.stop_store()
    started = time.monotonic()
    child = subprocess.Popen([tiersync_script(), "run", "--once", "--config", str(box.config_path)],
                             env=cli_env(box), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        raise SystemExit(f"tiersync run failed ({child.returncode}): {child.stderr.read().decode()[-800:]}")
    return usage.ru_maxrss / 1024.0, time.monotonic() - started


def add_file(box: Sandbox, ticket_id: int, name: str, path: Path, kind: str) -> None:
    with open(path, "rb") as handle:  # streamed to the simulator, not read here
        token = box.people.zendesk.upload(name, handle, kind)
    box.people.zendesk.comment_with_files(ticket_id, f"Attached {name}.", [token])


def file_requests(box: Sandbox) -> dict[str, int]:
    """Requests each simulator answered for files: content reads, uploads and chunks, and the
    relation (Azure DevOps) or note (Zendesk) that attaches an upload."""
    out = {}
    for name, sim in box.sims.items():
        with sim.lock:
            out[name] = len([r for r in sim.requests if _is_file_request(r)])
    return out


def _is_file_request(r) -> bool:
    text = json.dumps(r.body) if r.body is not None else ""
    return any(p in r.path for p in FILE_PATHS) or (
        r.method in ("PATCH", "PUT") and ('"AttachedFile"' in text or '"uploads"' in text))


def measure(mb: int, workdir: Path) -> list[str]:
    lines = []
    with Sandbox(workdir) as box:
        box.sims["jira"].files.upload_limit = (mb + 10) * 1024 * 1024
        ticket_id = open_case(box)
        small = workdir / "small.png"
        small.write_bytes(os.urandom(200_000))
        add_file(box, ticket_id, "small.png", small, "image/png")
        box.clear_requests()
        small_rss, _ = run_once(box)
        lines += [f"attachment_small.{k}.requests={v}" for k, v in file_requests(box).items()]
        big = workdir / "big.bin"
        with open(big, "wb") as out:
            for _ in range(mb):
                out.write(os.urandom(1024 * 1024))
        add_file(box, ticket_id, "capture.bin", big, "application/octet-stream")
        box.clear_requests()
        rss, seconds = run_once(box)
        lines += [f"attachment_{mb}mb.rss_peak_mb={rss:.1f}",
                  f"attachment_{mb}mb.rss_small_file_cycle_mb={small_rss:.1f}",
                  f"attachment_{mb}mb.rss_over_small_mb={rss - small_rss:.1f}",
                  f"attachment_{mb}mb.seconds={seconds:.2f}"]
        lines += [f"attachment_{mb}mb.{k}.requests={v}" for k, v in file_requests(box).items()]
        names = [a["filename"] for a in issue(box).attachments]
        lines.append(f"attachment_{mb}mb.jira_copied={int('capture.bin' in names)}")
        lines += back_to_zendesk(box)
    return lines


def back_to_zendesk(box: Sandbox) -> list[str]:
    """A file added in Jira: Jira read, Zendesk upload and note, Azure DevOps copy."""
    key = issue(box).key
    box.people.jira.session.post(f"{box.people.jira.base_url}/rest/api/2/issue/{key}/attachments",
                                 headers={"X-Atlassian-Token": "no-check"},
                                 files={"file": ("fix.txt", b"fix\n" * 1000, "text/plain")}, timeout=10)
    box.sims["jira"].settle_index()
    box.clear_requests()
    cycle(box)
    return [f"attachment_from_jira.{k}.requests={v}" for k, v in file_requests(box).items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tiersync-bench-files-") as tmp:
        for line in measure(args.mb, Path(tmp)):
            print(line)
    print(f"bench.max_rss_self_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
