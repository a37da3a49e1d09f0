"""Small text helpers for notes, explanations and the status board."""
from __future__ import annotations

from datetime import datetime, timezone

from core.model import SlaMetricName
from core.policy.calendar import BusinessCalendar

METRIC_LABELS = {
    SlaMetricName.ACKNOWLEDGEMENT: "acknowledgement",
    SlaMetricName.FIRST_SOLUTION: "first solution",
    SlaMetricName.CLOSE: "close",
}


def when_text(moment: datetime | None, calendar: BusinessCalendar | None = None) -> str:
    """'2024-03-11 17:00 UTC', with the calendar's local time when it is not UTC."""
    if moment is None:
        return "-"
    utc = moment.astimezone(timezone.utc)
    text = f"{utc:%Y-%m-%d %H:%M} UTC"
    if calendar is not None and calendar.zone.key != "UTC":
        local = utc.astimezone(calendar.zone)
        text += f" ({local:%a %H:%M %Z})"
    return text


def duration_text(seconds: float | None) -> str:
    """Seconds as '2h 05m' ('-1h 30m' when negative)."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    minutes = int(round(abs(seconds) / 60))
    return f"{sign}{minutes // 60}h {minutes % 60:02d}m"


def hours_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours = seconds / 3600
    return f"{hours:g} h"
