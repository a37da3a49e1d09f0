"""The calendar's running-total arithmetic against a straightforward day-by-day walk.

Random instants (seeded) around DST changes, holidays, year ends and opening times, in calendars
of several zones: both must agree to the microsecond.
"""
import random
from datetime import date, datetime, timedelta, timezone

import pytest

from core.policy.calendar import BusinessCalendar, CalendarConfig

US = timedelta(microseconds=1)

CALENDARS = {
    # US holidays, DST in March and November
    "pacific": CalendarConfig(timezone="America/Los_Angeles", hours=("09:00", "17:00"),
                              holidays={"country": "US"}),
    # open all day and every day: DST days are 23 h and 25 h long
    "berlin-24x7": CalendarConfig(timezone="Europe/Berlin", hours=("00:00", "24:00"),
                                  working_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                  holidays={"country": "DE", "subdivision": "BY"}),
    # opening hours inside the hour that DST skips (spring) or repeats (autumn)
    "berlin-night": CalendarConfig(timezone="Europe/Berlin", hours=("02:00", "03:00"),
                                   working_days=["sat", "sun"]),
    # a half-hour DST shift, southern hemisphere
    "lord-howe": CalendarConfig(timezone="Australia/Lord_Howe", hours=("08:30", "18:00"),
                                holidays={"country": "AU", "subdivision": "NSW"}),
    # DST changes at midnight
    "santiago": CalendarConfig(timezone="America/Santiago", hours=("00:00", "24:00"),
                               working_days=["mon", "tue", "wed", "thu", "fri"],
                               holidays={"country": "CL"}),
    "utc-one-day": CalendarConfig(timezone="UTC", working_days=["wed"], hours=("10:00", "11:30")),
}


def reference_seconds(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    """Business microseconds from start to end (start <= end), summed day by day."""
    total, day = 0, calendar.local_date(start)
    while day <= calendar.local_date(end):
        hours = calendar.opening_hours(day)
        if hours is not None:
            opened, closed = max(hours[0], start), min(hours[1], end)
            total += max(closed - opened, timedelta(0)) // US
        day += timedelta(days=1)
    return total


def reference_add(calendar: BusinessCalendar, start: datetime, amount: int) -> datetime:
    """The instant ``amount`` (> 0) business microseconds after start, walked day by day."""
    day = calendar.local_date(start)
    while True:
        hours = calendar.opening_hours(day)
        day += timedelta(days=1)
        if hours is None or hours[1] <= start:
            continue
        opened = max(hours[0], start)
        available = (hours[1] - opened) // US
        if amount <= available:
            return opened + amount * US
        amount -= available


def instants(calendar: BusinessCalendar, rng: random.Random, count: int) -> list[datetime]:
    """Random instants, half of them within a day of a DST change, a holiday, a year end or
    an opening or closing time (to the second or to the microsecond)."""
    anchors = [datetime(year, month, day, tzinfo=timezone.utc)
               for year in (2023, 2024, 2025, 2026) for month, day in
               ((1, 1), (3, 10), (3, 26), (3, 31), (4, 6), (7, 4), (9, 7), (10, 27), (10, 29),
                (11, 3), (11, 28), (12, 25), (12, 31))]
    for year in (2024, 2025):
        for day in range(0, 366, 7):
            hours = calendar.opening_hours(date(year, 1, 1) + timedelta(days=day))
            anchors.extend(hours or ())
    moments = []
    for n in range(count):
        if n % 2:
            moment = rng.choice(anchors) + timedelta(seconds=rng.choice(
                [0, 0, 1, -1, rng.randint(-86400, 86400)]))
        else:
            moment = datetime(2023, 1, 1, tzinfo=timezone.utc) + timedelta(
                seconds=rng.randint(0, 4 * 365 * 86400))
        moments.append(moment + timedelta(microseconds=rng.choice([0, 0, rng.randint(0, 999999)])))
    return moments


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_business_seconds_matches_the_day_by_day_sum(name):
    calendar = BusinessCalendar.from_config(name, CALENDARS[name])
    rng = random.Random(f"seconds-{name}")
    for start in instants(calendar, rng, 300):
        end = start + timedelta(seconds=rng.choice([0, 1, 3600, rng.randint(0, 40 * 86400),
                                                    rng.randint(0, 800 * 86400)]))
        expected = reference_seconds(calendar, start, end)
        assert calendar.business_seconds(start, end) == expected / 1_000_000, (start, end)
        assert calendar.business_seconds(end, start) == -expected / 1_000_000, (start, end)


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_add_matches_the_day_by_day_walk(name):
    calendar = BusinessCalendar.from_config(name, CALENDARS[name])
    rng = random.Random(f"add-{name}")
    for start in instants(calendar, rng, 300):
        hours = rng.choice([1, 8, 9.5, 24, 40, rng.uniform(0, 50), rng.uniform(0, 3000)])
        amount = max(1, round(hours * 3600) * 1_000_000 + rng.choice([0, 0, 1, -1]))
        end = calendar.add(start, amount / 1_000_000)
        assert end == reference_add(calendar, start, round(amount / 1_000_000 * 1_000_000)), start
        assert end.tzinfo == timezone.utc


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_add_then_measure_gives_the_amount_back(name):
    """Exact to the microsecond: business time from start to start + x is x."""
    calendar = BusinessCalendar.from_config(name, CALENDARS[name])
    rng = random.Random(f"inverse-{name}")
    for start in instants(calendar, rng, 200):
        seconds = rng.randint(1, 600 * 3600)
        assert calendar.business_seconds(start, calendar.add(start, seconds)) == seconds


def test_an_exact_fill_ends_at_closing_not_at_the_next_opening():
    calendar = BusinessCalendar.from_config("pacific", CALENDARS["pacific"])
    friday_open, friday_close = calendar.opening_hours(date(2024, 3, 8))
    assert calendar.add(friday_open, 8 * 3600) == friday_close
    assert calendar.add(friday_open, 8 * 3600 + 1) == calendar.opening_hours(date(2024, 3, 11))[0] \
        + timedelta(seconds=1)


def test_the_skipped_dst_hour_holds_no_business_time():
    calendar = BusinessCalendar.from_config("night", CALENDARS["berlin-night"])
    spring = datetime(2024, 3, 30, 12, tzinfo=timezone.utc)  # Saturday before the change
    autumn = datetime(2024, 10, 26, 12, tzinfo=timezone.utc)
    assert calendar.business_seconds(spring, spring + timedelta(days=1)) == 0  # 02:00-03:00 skipped
    assert calendar.business_seconds(autumn, autumn + timedelta(days=1)) == 2 * 3600  # repeated


def test_a_calendar_with_no_business_hours_for_years_is_refused():
    config = CalendarConfig(timezone="UTC", working_days=["mon"])
    calendar = BusinessCalendar.from_config("mondays", config)
    closed = BusinessCalendar(name="never", zone=calendar.zone, working_days=frozenset(),
                              opens=calendar.opens, closes=calendar.closes)
    with pytest.raises(ValueError, match="'never' has no business hours"):
        closed.add(datetime(2024, 1, 1, tzinfo=timezone.utc), 3600)
    assert closed.business_seconds(datetime(2024, 1, 1, tzinfo=timezone.utc),
                                   datetime(2026, 1, 1, tzinfo=timezone.utc)) == 0
