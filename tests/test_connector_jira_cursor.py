"""Jira time formats, the JQL window and the change cursor (no HTTP)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from connectors.jira_cursor import (ChangeCursor, format_jira_time, iso_utc, jql_minute,
                                    parse_jira_time, to_ms, zone)
from core.errors import PermanentError

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("text, expected", [
    ("2026-01-05T20:00:10.000+1100", datetime(2026, 1, 5, 9, 0, 10, tzinfo=timezone.utc)),
    ("2026-01-05T09:00:10.123-0130", datetime(2026, 1, 5, 10, 30, 10, 123000, tzinfo=timezone.utc)),
    ("2026-01-05T09:00:10Z", datetime(2026, 1, 5, 9, 0, 10, tzinfo=timezone.utc)),
    ("2026-01-05T09:00:10+00:00", datetime(2026, 1, 5, 9, 0, 10, tzinfo=timezone.utc)),
])
def test_parse_jira_time(text, expected):
    assert parse_jira_time(text) == expected


def test_time_formats_round_trip():
    when = datetime(2026, 1, 5, 9, 0, 10, 123000, tzinfo=timezone.utc)
    assert format_jira_time(when.astimezone(BERLIN)) == "2026-01-05T09:00:10.123+0000"
    assert iso_utc(when) == "2026-01-05T09:00:10.123Z"
    assert iso_utc(when.replace(microsecond=0)) == "2026-01-05T09:00:10Z"
    assert parse_jira_time(format_jira_time(when)) == when
    with pytest.raises(ValueError):
        parse_jira_time("05/Jan/26 9:00 AM")


def test_jql_minute_is_local_and_steps_back_in_the_repeated_hour():
    assert jql_minute(datetime(2026, 1, 5, 9, 0, 59, tzinfo=timezone.utc), BERLIN) == "2026/01/05 10:00"
    # 25 October 2026: 02:00-03:00 happens twice in Berlin; both instants map to 01:30
    first = datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)  # 02:30 CEST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc)  # 02:30 CET
    assert jql_minute(first, BERLIN) == jql_minute(second, BERLIN) == "2026/10/25 01:30"
    assert zone(None) is timezone.utc and zone("Not/AZone") is timezone.utc


def test_cursor_window_dedup_and_pruning():
    start = datetime(2026, 1, 5, 9, 0, 30, tzinfo=timezone.utc)
    cursor = ChangeCursor.decode(None, start)
    overlap = timedelta(minutes=2)
    assert cursor.window_start(overlap) == datetime(2026, 1, 5, 8, 58, tzinfo=timezone.utc)
    old = to_ms(start + timedelta(seconds=5))
    cursor.accept("ENG-1", old)
    assert not cursor.is_new("ENG-1", old) and cursor.is_new("ENG-1", old + 1) and cursor.is_new("ENG-2", old)
    cursor.accept("ENG-2", to_ms(start + timedelta(minutes=10)))
    cursor.prune(overlap)  # ENG-1's version is now before the window: forgotten
    resumed = ChangeCursor.decode(cursor.encode(), start)
    assert resumed == cursor and list(resumed.seen) == ["ENG-2"]
    assert resumed.window_start(overlap) == datetime(2026, 1, 5, 9, 8, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["garbage", "j1:{not json", 'j1:{"seen": {}}', "j1:[]"])
def test_unreadable_cursor_is_a_permanent_error(text):
    with pytest.raises(PermanentError, match="unreadable Jira cursor"):
        ChangeCursor.decode(text, datetime.now(timezone.utc))
