"""Business-hours arithmetic: working hours, weekends, holidays and DST changes."""
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.policy.calendar import BusinessCalendar, CalendarConfig
from tests.fixtures.policy.builders import shipped_policy, utc

PT = ZoneInfo("America/Los_Angeles")
HOUR = 3600


def pacific() -> BusinessCalendar:
    return shipped_policy().calendars["pacific-business-hours"]


def local(*args: int, zone: ZoneInfo = PT) -> datetime:
    return datetime(*args, tzinfo=zone)


# start (local Pacific), business hours to add, expected end (local Pacific)
ADD_CASES = [
    pytest.param(local(2024, 3, 5, 9), 1, local(2024, 3, 5, 10), id="inside-one-day"),
    pytest.param(local(2024, 3, 5, 9), 8, local(2024, 3, 5, 17), id="ends-at-closing-not-next-day"),
    pytest.param(local(2024, 3, 5, 7), 1, local(2024, 3, 5, 10), id="starts-before-opening"),
    pytest.param(local(2024, 3, 5, 18), 1, local(2024, 3, 6, 10), id="starts-after-closing"),
    pytest.param(local(2024, 3, 9, 12), 1, local(2024, 3, 11, 10), id="starts-on-saturday"),
    # US DST starts Sunday 2024-03-10: Friday is PST (UTC-8), Monday PDT (UTC-7).
    pytest.param(local(2024, 3, 8, 16), 2, local(2024, 3, 11, 10), id="over-dst-start"),
    # US DST ends Sunday 2024-11-03.
    pytest.param(local(2024, 11, 1, 16), 2, local(2024, 11, 4, 10), id="over-dst-end"),
    # Independence Day, Thursday 2024-07-04.
    pytest.param(local(2024, 7, 3, 16), 2, local(2024, 7, 5, 10), id="over-july-4th"),
    # Thanksgiving, Thursday 2024-11-28 (the Friday after is a working day).
    pytest.param(local(2024, 11, 27, 16), 2, local(2024, 11, 29, 10), id="over-thanksgiving"),
    # 2026-07-04 is a Saturday, observed on Friday 2026-07-03.
    pytest.param(local(2026, 7, 2, 16), 2, local(2026, 7, 6, 10), id="observed-holiday"),
    pytest.param(local(2024, 3, 5, 9), 40, local(2024, 3, 11, 17), id="a-week-over-dst"),
]


@pytest.mark.parametrize("start, hours, expected", ADD_CASES)
def test_add_business_hours(start, hours, expected):
    calendar = pacific()
    end = calendar.add(start, hours * HOUR)
    assert end == expected
    assert end.tzinfo == timezone.utc


@pytest.mark.parametrize("start, hours, expected", ADD_CASES)
def test_business_seconds_is_the_inverse(start, hours, expected):
    calendar = pacific()
    assert calendar.business_seconds(start, expected) == hours * HOUR
    assert calendar.business_seconds(expected, start) == -hours * HOUR


def test_dst_start_uses_the_new_utc_offset():
    calendar = pacific()
    friday_close = calendar.opening_hours(date(2024, 3, 8))
    monday_open = calendar.opening_hours(date(2024, 3, 11))
    assert friday_close == (utc(2024, 3, 8, 17), utc(2024, 3, 9, 1))  # 09:00-17:00 PST
    assert monday_open == (utc(2024, 3, 11, 16), utc(2024, 3, 12, 0))  # 09:00-17:00 PDT


def test_holidays_and_weekends_are_closed():
    calendar = pacific()
    assert not calendar.is_working_day(date(2024, 7, 4))
    assert not calendar.is_working_day(date(2024, 12, 25))
    assert not calendar.is_working_day(date(2024, 3, 9))
    assert calendar.is_working_day(date(2024, 3, 11))
    assert calendar.business_seconds(local(2024, 7, 4, 0), local(2024, 7, 5, 0)) == 0


def test_is_open_and_local_date():
    calendar = pacific()
    assert calendar.is_open(local(2024, 3, 5, 9))
    assert not calendar.is_open(local(2024, 3, 5, 17))
    assert calendar.local_date(utc(2024, 3, 6, 3)) == date(2024, 3, 5)


def test_zero_or_negative_seconds_return_the_start():
    start = local(2024, 3, 9, 12)
    assert pacific().add(start, 0) == start
    assert pacific().add(start, -5) == start


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        pacific().add(datetime(2024, 3, 5, 9), HOUR)


def twenty_four_seven(zone: str) -> BusinessCalendar:
    config = CalendarConfig(timezone=zone, working_days=["mon", "tue", "wed", "thu", "fri", "sat",
                                                         "sun"], hours=("00:00", "24:00"))
    return BusinessCalendar.from_config("24x7", config)


def test_24x7_calendar_counts_real_time_across_dst():
    berlin = ZoneInfo("Europe/Berlin")
    calendar = twenty_four_seven("Europe/Berlin")
    start = datetime(2024, 3, 30, 12, tzinfo=berlin)  # CET
    end = datetime(2024, 3, 31, 12, tzinfo=berlin)  # CEST: 23 real hours later
    assert calendar.business_seconds(start, end) == 23 * HOUR
    assert calendar.add(start, 23 * HOUR) == end
    autumn = datetime(2024, 10, 26, 12, tzinfo=berlin)  # CEST; the next noon is CET
    assert calendar.business_seconds(autumn, autumn + timedelta(days=1)) == 25 * HOUR


def test_shipped_noc_calendar_is_wall_clock():
    noc = shipped_policy().calendars["noc-24x7"]
    start = utc(2024, 12, 24, 23, 50)
    assert noc.add(start, 15 * 60) == utc(2024, 12, 25, 0, 5)


@settings(max_examples=60, deadline=None)
@given(start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31),
                          timezones=st.just(timezone.utc)),
       minutes=st.integers(min_value=1, max_value=60 * 120))
def test_add_then_measure_round_trips(start, minutes):
    calendar = pacific()
    end = calendar.add(start, minutes * 60)
    assert calendar.business_seconds(start, end) == pytest.approx(minutes * 60)
    assert calendar.is_open(end - timedelta(microseconds=1))


@pytest.mark.parametrize("fields, message", [
    ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
    ({"hours": ("25:00", "26:00")}, "not a time of day"),
    ({"hours": ("17:00", "09:00")}, "must be before"),
    ({"working_days": []}, "at least 1 item"),
    ({"working_days": ["monday"]}, "Input should be 'mon'"),
    ({"holidays": {"country": "XX"}}, "Country XX not available"),
    ({"holidays": {"country": "US", "subdivision": "ZZ"}}, "does not have subdivision"),
])
def test_calendar_config_errors(fields, message):
    with pytest.raises(ValidationError, match=message):
        CalendarConfig(**fields)
