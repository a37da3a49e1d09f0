"""Business-hours arithmetic: the calendar's running totals against the period-by-period walk.

    python bench/business_hours.py [--n 20000]

Over the shipped policy's calendars, N random instants in 2024-2026 and business spans of up
to 200 hours (an SLA target, a review deadline, a daily-update interval), prints ``name=value``:
``calendar.add_per_s`` and ``calendar.business_seconds_per_s`` (``BusinessCalendar.add`` and
``business_seconds``), the same for the walk over ``open_periods`` they replaced
(``calendar.walk_*``), and ``calendar.mismatches`` (results that differ: must be 0).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.policy import load_policy  # noqa: E402

ONE_US = timedelta(microseconds=1)


def walk_add(calendar, start: datetime, seconds: float) -> datetime:
    remaining = round(seconds * 1_000_000)
    for opened, closed in calendar.open_periods(start):
        available = (closed - opened) // ONE_US
        if remaining <= available:
            return opened + remaining * ONE_US
        remaining -= available
    raise AssertionError("open_periods never ends")


def walk_seconds(calendar, start: datetime, end: datetime) -> float:
    total = timedelta(0)
    for opened, closed in calendar.open_periods(start):
        if opened >= end:
            break
        total += min(closed, end) - opened
    return total / ONE_US / 1_000_000


def rate(n: int, fn) -> float:
    began = time.perf_counter()
    fn()
    return n / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="instants per measurement")
    args = parser.parse_args()
    calendars = list(load_policy(ROOT / "mappings" / "policy.yaml").calendars.values())
    rng = random.Random(11)
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    cases = [(rng.choice(calendars), base + timedelta(seconds=rng.randint(0, 3 * 365 * 86400)),
              rng.uniform(0, 200) * 3600) for _ in range(args.n)]
    ends = [(c, s, s + timedelta(seconds=h * 3)) for c, s, h in cases]
    for calendar in calendars:  # lay out the years once, outside the timings
        calendar.business_seconds(base, base + timedelta(days=4 * 365))
    out = {
        "calendar.add_per_s": rate(args.n, lambda: [c.add(s, h) for c, s, h in cases]),
        "calendar.business_seconds_per_s": rate(
            args.n, lambda: [c.business_seconds(s, e) for c, s, e in ends]),
        "calendar.walk_add_per_s": rate(args.n, lambda: [walk_add(c, s, h) for c, s, h in cases]),
        "calendar.walk_business_seconds_per_s": rate(
            args.n, lambda: [walk_seconds(c, s, e) for c, s, e in ends]),
    }
    mismatches = sum(c.add(s, h) != walk_add(c, s, h) for c, s, h in cases) + sum(
        c.business_seconds(s, e) != walk_seconds(c, s, e) for c, s, e in ends)
    print(f"calendar.n={args.n}")
    print(f"calendar.calendars={len(calendars)}")
    for name, value in out.items():
        print(f"{name}={value:.0f}")
    print(f"calendar.mismatches={mismatches}")


if __name__ == "__main__":
    main()
