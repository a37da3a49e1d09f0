"""Business-hours calendars: working days and hours in a time zone, minus public holidays.

Built on ``zoneinfo`` and the maintained ``holidays`` library. Every datetime going in or out is
timezone-aware; results are UTC. Opening hours are laid out per *local* day and converted to UTC,
so a day across a DST change has the right length (a 24x7 calendar in Europe/Berlin counts 23 h on
the last Sunday of March). The ``businesstimedelta`` package was considered and not used: its
last release (1.0.1) is pytz-based, unmaintained, and fails with holiday rules (TypeError when a
holiday list ends before the end date; an endless loop subtracting around US holidays).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.policy.calendar_days import DayIndex, from_us, to_us

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: dict[str, int] = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
MAX_CLOSED_DAYS = 3660  # a calendar closed for ten years in a row is a configuration error


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HolidaySource(_Strict):
    """Public holidays from the ``holidays`` library (``country_holidays``)."""

    country: str
    subdivision: str | None = None
    categories: list[str] | None = None
    observed: bool = True  # also close on the weekday a weekend holiday is observed

    @model_validator(mode="after")
    def _known(self) -> "HolidaySource":
        try:
            self.build()
        except (NotImplementedError, ValueError, KeyError) as exc:
            raise ValueError(f"holidays: {exc}") from None
        return self

    def build(self) -> holidays_lib.HolidayBase:
        return holidays_lib.country_holidays(self.country, subdiv=self.subdivision,
                                             categories=self.categories, observed=self.observed)


class CalendarConfig(_Strict):
    timezone: str = "UTC"
    working_days: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"],
                                        min_length=1)
    hours: tuple[str, str] = ("09:00", "17:00")  # opens, closes; "00:00"-"24:00" is all day
    holidays: HolidaySource | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                             f"'America/Los_Angeles')") from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: tuple[str, str]) -> tuple[str, str]:
        for text in value:
            match = _HHMM.match(text)
            if not match or (match[1] == "24" and match[2] != "00"):
                raise ValueError(f"{text!r} is not a time of day as HH:MM (00:00-24:00)")
        if _minutes(value[0]) >= _minutes(value[1]):
            raise ValueError(f"opening time {value[0]} must be before closing time {value[1]}")
        return value


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _as_time(text: str) -> time | None:
    """HH:MM as a time; '24:00' (end of the day) as None."""
    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("business-time arithmetic needs timezone-aware datetimes")
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True, eq=False)
class BusinessCalendar:
    name: str
    zone: ZoneInfo
    working_days: frozenset[int]
    opens: time
    closes: time | None  # None: open until midnight (24:00)
    holidays: holidays_lib.HolidayBase | None = field(default=None, repr=False)
    # each local day's hours and running totals, laid out once (core/policy/calendar_days.py)
    _days: DayIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_days", DayIndex(self.opening_hours))

    @classmethod
    def from_config(cls, name: str, config: CalendarConfig) -> "BusinessCalendar":
        return cls(name=name, zone=ZoneInfo(config.timezone),
                   working_days=frozenset(WEEKDAYS[day] for day in config.working_days),
                   opens=_as_time(config.hours[0]) or time(0), closes=_as_time(config.hours[1]),
                   holidays=config.holidays.build() if config.holidays else None)

    # -- days --------------------------------------------------------------------------------
    def is_working_day(self, day: date) -> bool:
        if day.weekday() not in self.working_days:
            return False
        return self.holidays is None or day not in self.holidays

    def local_date(self, moment: datetime) -> date:
        return _utc(moment).astimezone(self.zone).date()

    def opening_hours(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC start and end of business on local ``day``; None when closed all day."""
        if not self.is_working_day(day):
            return None
        start = datetime.combine(day, self.opens, tzinfo=self.zone)
        if self.closes is None:
            end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        else:
            end = datetime.combine(day, self.closes, tzinfo=self.zone)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)

    def open_periods(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open periods from ``since`` on, in order; the first one is clipped to ``since``."""
        since = _utc(since)
        day = self.local_date(since)
        closed_days = 0
        while closed_days < MAX_CLOSED_DAYS:
            hours = self.opening_hours(day)
            day += timedelta(days=1)
            if hours is None or hours[1] <= since:
                closed_days += 1
                continue
            closed_days = 0
            yield max(hours[0], since), hours[1]
        raise ValueError(f"calendar {self.name!r} has no business hours for {MAX_CLOSED_DAYS} days")

    # -- arithmetic --------------------------------------------------------------------------
    def is_open(self, moment: datetime) -> bool:
        hours = self.opening_hours(self.local_date(moment))
        return hours is not None and hours[0] <= _utc(moment) < hours[1]

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Business time from ``start`` to ``end`` in seconds (negative when end < start):
        the same sum as over ``open_periods``, from the running totals of the days."""
        start, end = _utc(start), _utc(end)
        if end < start:
            return -self.business_seconds(end, start)
        total = self._days.between(self.local_date(start), to_us(start),
                                   self.local_date(end), to_us(end))
        return total / 1_000_000

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment ``seconds`` of business time after ``start`` (``start`` itself for <= 0):
        within the first open period that holds the rest, its closing when that period holds it
        exactly (the same as walking ``open_periods``)."""
        start = _utc(start)
        remaining = round(seconds * 1_000_000)
        if remaining <= 0:
            return start
        return from_us(self._days.add(self.local_date(start), to_us(start), remaining, self.name))
