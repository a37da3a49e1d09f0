"""Propagation latency: a change in one tracker until it appears in another, with webhooks and
with polling only.

    python bench/latency.py --changes 100

For each mode a fresh sandbox (the three simulators) and a real ``tiersync daemon`` process:
- ``webhooks``: the simulators send their signed webhooks to ``daemon --listen``; the daemon
  still polls every ``--safety-interval`` seconds (default 60, the source of truth);
- ``polling``: no webhooks; the daemon polls every ``--poll-interval`` seconds.
Two kinds of change, ``--changes`` of each, one every ``--spacing`` seconds:
- ``create``: tier 1 escalates a new Zendesk ticket -> its Azure DevOps engagement item exists;
- ``update``: tier 2 adds a note on the item -> it shows as a private note on the Zendesk ticket.
Prints ``name=value`` lines: p50/p95/max per mode and kind, and over both kinds.
The simulator profile (``--profile``): ``realistic`` (simulators/profile.py at the vendors' real
time scale) or ``lenient``; both add 40-120 ms to every tracker API call.
The spacing keeps the change rate (default one every 2 s, far above a support desk's) below
what one daemon applies serially, so the figures are latency, not queueing.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)  # run as a script: no bench module may shadow a library of its name
else:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import requests  # noqa: E402

from bench.chaos_process import wait_until  # noqa: E402
from bench.chaos_scenario import People, make_cases  # noqa: E402
from bench.realtime_setup import (add_webhook_sections, free_port, point_webhooks,  # noqa: E402
                                  start_daemon)
from simulators.base import Faults  # noqa: E402
from simulators.profile import LENIENT, Profile  # noqa: E402
from harness.sandbox import Sandbox  # noqa: E402


def sandbox(workdir: Path, profile: str) -> Sandbox:
    """The simulators at the vendors' real time windows (``realistic``: Zendesk's export holds
    back the last minute, rate-limit windows at full length) or ``lenient``; either way every
    tracker API call is delayed 40-120 ms (the SaaS APIs from a nearby region)."""
    faults = {name: Faults(latency_ms=40, latency_jitter_ms=80, seed=n)
              for n, name in enumerate(("zendesk", "azure_devops", "jira"))}
    chosen = Profile(realistic=True, time_scale=1.0) if profile == "realistic" else LENIENT
    return Sandbox(workdir, faults=faults, profile=chosen)


class Watch:
    """Stamps when each awaited condition first holds (checked every 20 ms in a thread)."""

    def __init__(self):
        self.waiting: dict[str, tuple[float, Callable[[], bool]]] = {}
        self.latencies: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def expect(self, key: str, started: float, check: Callable[[], bool]) -> None:
        with self.lock:
            self.waiting[key] = (started, check)

    def _run(self) -> None:
        while not self.stopped.is_set():
            with self.lock:
                items = list(self.waiting.items())
            now = time.monotonic()
            for key, (started, check) in items:
                if check():
                    with self.lock:
                        self.waiting.pop(key, None)
                        self.latencies[key] = now - started
            time.sleep(0.02)

    def drain(self, timeout: float) -> int:
        wait_until(lambda: not self.waiting, timeout, poll=0.1)
        self.stopped.set()
        return len(self.waiting)


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp, sandbox(Path(tmp), args.profile) as box:
        add_webhook_sections(box)
        port = free_port()
        interval = args.safety_interval if mode == "webhooks" else args.poll_interval
        log = (args.log_dir or Path(tmp)) / f"daemon-{mode}.log"
        proc = start_daemon(box, port, log, interval)
        try:
            assert wait_until(lambda: _ready(port), 120, poll=0.2), log.read_text()
            if mode == "webhooks":
                point_webhooks(box, port)
            return _measure(box, args)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _measure(box: Sandbox, args: argparse.Namespace) -> dict[str, list[float]]:
    cases = [c for c in make_cases(args.changes * 2, seed=11) if c.open][:args.changes]
    people = People(box, cases)
    watch = Watch()
    for case in cases:  # create: Zendesk ticket -> Azure DevOps engagement item
        one = People(box, [case])
        started = time.monotonic()
        one.intake()
        people.tickets.update(one.tickets)
        watch.expect(f"create:{case.sr}", started, lambda sr=case.sr: sr in people.ado_items())
        time.sleep(args.spacing)
    lost = watch.drain(args.timeout)
    creates = dict(watch.latencies)
    watch = Watch()
    items = people.ado_items()
    for case in cases:  # update: a tier 2 note on Azure DevOps -> a private note on Zendesk
        if case.sr not in items:
            continue
        token = f"bench-note-{case.sr}"
        started = time.monotonic()
        people.ado.human_comment(items[case.sr][0], f"Tier 2 update {token}: reproduced.")
        tid = people.tickets[case.sr]
        watch.expect(f"update:{case.sr}", started, lambda tid=tid, token=token: _noted(people, tid, token))
        time.sleep(args.spacing)
    lost += watch.drain(args.timeout)
    return {"create": list(creates.values()), "update": list(watch.latencies.values()),
            "lost": [float(lost)]}


def _noted(people: People, ticket_id: int, token: str) -> bool:
    with people.zendesk.lock:
        return any(token in (c.get("body") or "") for c in people.zendesk.state.tickets[ticket_id].comments)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else float("nan")


def report(mode: str, results: dict[str, Any]) -> None:
    both = results["create"] + results["update"]
    for kind, values in (("create", results["create"]), ("update", results["update"]), ("all", both)):
        print(f"{mode}_{kind}_changes={len(values)}")
        print(f"{mode}_{kind}_p50_s={statistics.median(values) if values else float('nan'):.3f}")
        print(f"{mode}_{kind}_p95_s={percentile(values, 0.95):.3f}")
        print(f"{mode}_{kind}_max_s={max(values) if values else float('nan'):.3f}")
    print(f"{mode}_not_propagated={int(results['lost'][0])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=100, help="changes of each kind per mode")
    parser.add_argument("--spacing", type=float, default=2.0, help="seconds between changes")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="polling-only mode's interval")
    parser.add_argument("--safety-interval", type=float, default=60.0, help="webhook mode's poll interval")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on a change after")
    parser.add_argument("--profile", default="realistic", choices=("realistic", "lenient"))
    parser.add_argument("--modes", default="webhooks,polling")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep each mode's daemon log here (INFO: every hint pass's steps)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"profile={args.profile}")
    print(f"poll_interval_s={args.poll_interval}")
    print(f"safety_interval_s={args.safety_interval}")
    for mode in args.modes.split(","):
        report(mode, run_mode(mode, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
