"""Business-time arithmetic by running totals: each local day's opening hours computed once.

Rules:
- a calendar's days are laid out a local year at a time: each day's opening and closing as UTC
  epoch microseconds (from ``BusinessCalendar.opening_hours``, so DST and holidays are exactly
  the calendar's), and the running total of business microseconds before each day;
- business time between two instants is the difference of their running totals (the year totals
  in between added), and adding business time is a binary search in the running totals: cost
  logarithmic in the span, not linear in the open periods it crosses;
- exact to the microsecond, like the period-by-period walk it replaces (``open_periods``);
- a pure function of the calendar: a year once laid out never changes (the holidays of a year are
  fixed), so the layout is kept for the calendar's life; a year is built whole before it is
  published, so threads sharing a calendar never see half a year.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_US = timedelta(microseconds=1)
MAX_CLOSED_YEARS = 10  # a calendar closed for ten years in a row is a configuration error

Hours = Callable[[date], "tuple[datetime, datetime] | None"]


def to_us(moment: datetime) -> int:
    """A UTC datetime as integer microseconds since the epoch."""
    return (moment - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + us * ONE_US


@dataclass(frozen=True)
class Year:
    """One local year: per day (index 0 = 1 January) its UTC opening and closing in epoch
    microseconds (equal when closed), and ``before[i]``: business microseconds before day i."""
    first: int  # ordinal of 1 January
    opens: tuple[int, ...]
    closes: tuple[int, ...]
    before: tuple[int, ...]  # one longer than the days: before[-1] is the year's total

    @property
    def total(self) -> int:
        return self.before[-1]

    def until(self, day: date, us: int) -> int:
        """Business microseconds of this year before instant ``us``, which falls on local ``day``."""
        i = day.toordinal() - self.first
        return self.before[i] + min(max(us, self.opens[i]), self.closes[i]) - self.opens[i]

    def at(self, target: int, lo: int) -> int:
        """The instant at which this year's running total reaches ``target`` (> before[lo]),
        searching from day ``lo``: the first day whose end reaches it (a period's closing, not
        the next opening, when it is reached exactly)."""
        i = bisect_left(self.before, target, lo + 1) - 1
        return self.opens[i] + target - self.before[i]


def lay_out(year: int, hours: Hours) -> Year:
    first = date(year, 1, 1)
    opens, closes, before, total = [], [], [0], 0
    for offset in range((date(year + 1, 1, 1) - first).days):
        period = hours(first + timedelta(days=offset))
        start, end = (to_us(period[0]), to_us(period[1])) if period else (0, 0)
        total += end - start
        opens.append(start)
        closes.append(end)
        before.append(total)
    return Year(first.toordinal(), tuple(opens), tuple(closes), tuple(before))


class DayIndex:
    """The laid-out years of one calendar, built on first use."""

    def __init__(self, hours: Hours):
        self._hours = hours
        self._years: dict[int, Year] = {}

    def year(self, number: int) -> Year:
        found = self._years.get(number)
        if found is None:
            found = self._years[number] = lay_out(number, self._hours)
        return found

    def between(self, start_day: date, start: int, end_day: date, end: int) -> int:
        """Business microseconds from ``start`` to ``end`` (start <= end), instants on the given
        local days."""
        first = self.year(start_day.year)
        if start_day.year == end_day.year:
            return first.until(end_day, end) - first.until(start_day, start)
        total = first.total - first.until(start_day, start)
        for number in range(start_day.year + 1, end_day.year):
            total += self.year(number).total
        return total + self.year(end_day.year).until(end_day, end)

    def add(self, day: date, start: int, amount: int, name: str) -> int:
        """The instant ``amount`` (> 0) business microseconds after ``start`` (on local ``day``)."""
        number = day.year
        year = self.year(number)
        lo = day.toordinal() - year.first
        target = year.until(day, start) + amount
        closed = 0
        while target > year.total:  # carried into the next year, counted from its 1 January
            closed = closed + 1 if year.total == 0 else 0
            if closed >= MAX_CLOSED_YEARS:
                raise ValueError(f"calendar {name!r} has no business hours for {closed} years")
            target -= year.total
            number += 1
            year, lo = self.year(number), 0
        return year.at(target, lo)
