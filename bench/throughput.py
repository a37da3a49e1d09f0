"""Throughput and memory of a first sync and of an idle cycle, over the local simulators.

    python bench/throughput.py --escalations 500

Seeds N escalated Zendesk tickets, runs sync cycles (real connectors, real HTTP) until nothing is
left to do, and prints: wall time, escalations per second, requests per tracker, Python heap peak
(tracemalloc) and the cost of one idle cycle afterwards. The simulators run unthrottled, so the
figures are tiersync's own cost; compare requests per escalation with the vendors' rate limits
(LIBRARIES.md) to estimate the real ceiling.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.demo import CF  # noqa: E402
from harness.sandbox import Sandbox  # noqa: E402


def seed_tickets(box: Sandbox, count: int) -> None:
    zendesk = box.sims["zendesk"]
    for n in range(count):
        sr = f"{10_000_000_000_000 + n}"
        zendesk.create_ticket({
            "subject": f"{sr} - Bench case {n}", "description": "Portal returns 403 for the partner.",
            "requester": {"email": "pat@contoso-partner.example.com", "name": "Pat Partner"},
            "priority": "normal", "tags": ["escalate_tier2"],
            "custom_fields": [{"id": CF["sr"], "value": sr}, {"id": CF["severity"], "value": "sev_3"},
                              {"id": CF["plan"], "value": "plan_professional"},
                              {"id": CF["engagement"], "value": "Technical"},
                              {"id": CF["offer_type"], "value": "SaaS Offer"},
                              {"id": CF["offer_ids"], "value": f"offer-{n}"},
                              {"id": CF["seller"], "value": "SELLER-1"},
                              {"id": CF["scope"], "value": "scope_cloud"},
                              {"id": CF["contact_name"], "value": "Pat Partner"},
                              {"id": CF["contact_email"], "value": "pat@contoso-partner.example.com"}]})


def requests_by_tracker(box: Sandbox) -> dict[str, int]:
    return {name: len(sim.requests) for name, sim in box.sims.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--escalations", type=int, default=300, help="escalated tickets to sync")
    parser.add_argument("--max-cycles", type=int, default=20, help="stop after this many cycles")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp, Sandbox(Path(tmp)) as box:
        seed_tickets(box, args.escalations)
        box.clear_requests()
        tracemalloc.start()
        started = time.perf_counter()
        cycles = 0
        for cycles in range(1, args.max_cycles + 1):
            report = box.cycle()
            if report.changed == 0 and report.actions_done == 0:
                break
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        first = requests_by_tracker(box)
        items = len(box.snapshot()["azure_devops"]["work_items"])
        box.clear_requests()
        idle_start = time.perf_counter()
        box.cycle()
        idle = time.perf_counter() - idle_start
        idle_requests = requests_by_tracker(box)
    total = sum(first.values())
    print(f"escalations={args.escalations} mirrors_created={items} cycles={cycles} "
          f"seconds={elapsed:.1f} escalations_per_second={args.escalations / elapsed:.1f}")
    print("requests " + " ".join(f"{k}={v}" for k, v in first.items())
          + f" per_escalation={total / max(1, args.escalations):.1f}")
    print(f"python_heap_peak_mb={peak / 1e6:.1f}")
    print(f"idle_cycle_seconds={idle:.2f} idle_requests " + " ".join(f"{k}={v}" for k, v in idle_requests.items()))
    return 0 if items >= args.escalations else 1


if __name__ == "__main__":
    sys.exit(main())
