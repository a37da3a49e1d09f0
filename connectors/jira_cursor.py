"""The Jira change cursor and Jira's time formats.

JQL compares ``updated`` at minute granularity, in the time zone of the account that runs the
search. So every incremental query reaches back: from the last ``updated`` delivered, minus an
overlap (index lag, clock skew), floored to the minute. Records in that overlap that were
already delivered are dropped by (key, updated); the cursor carries the boundary set needed for
that, so resuming from any page's cursor never delivers an (id, version) twice.

Cursor text: ``j1:`` + compact JSON ``{"since": <ms>, "seen": {"<key>": <updated ms>}}``.
``since`` is the newest ``updated`` delivered (or the configured start); ``seen`` holds only
records whose ``updated`` is inside the next query window, so it stays small.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import PermanentError

PREFIX = "j1:"
_JIRA_TS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_jira_time(text: str) -> datetime:
    """Jira's ``2026-01-05T09:00:00.000+0100`` (or ISO 8601) as an aware datetime."""
    match = _JIRA_TS.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not a Jira timestamp: {text!r}")
    base, fraction, offset = match.groups()
    micros = int((fraction or ".0")[1:].ljust(6, "0")[:6])
    when = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(microsecond=micros)
    if offset in (None, "Z"):
        return when.replace(tzinfo=timezone.utc)
    sign = 1 if offset[0] == "+" else -1
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when.replace(tzinfo=timezone(sign * delta))


def format_jira_time(when: datetime) -> str:
    """An aware datetime in the format Jira's date-time fields accept on write."""
    utc = when.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def iso_utc(when: datetime) -> str:
    """``2026-01-05T09:00:00Z`` (milliseconds only when present): the flat view's time format."""
    utc = when.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond // 1000:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_ms(when: datetime) -> int:
    """Whole milliseconds since the epoch (integer arithmetic: no float rounding)."""
    return (when - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def zone(name: str | None) -> tzinfo:
    """The account's time zone; UTC when Jira did not say or named one we do not know."""
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def jql_minute(when: datetime, tz: tzinfo) -> str:
    """``yyyy/MM/dd HH:mm`` in the account's zone, never later than ``when``.

    In the repeated hour when clocks go back, a wall time names two instants and Jira may read
    the later one; stepping back by the difference keeps the window from skipping records.
    """
    local = when.astimezone(tz)
    naive = local.replace(tzinfo=None)
    first = naive.replace(tzinfo=tz, fold=0).utcoffset()
    second = naive.replace(tzinfo=tz, fold=1).utcoffset()
    if first is not None and second is not None and first != second:
        naive -= abs(first - second)
    return naive.strftime("%Y/%m/%d %H:%M")


@dataclass
class ChangeCursor:
    since_ms: int
    seen: dict[str, int] = field(default_factory=dict)

    @classmethod
    def decode(cls, text: str | None, default_since: datetime) -> "ChangeCursor":
        if not text:
            return cls(to_ms(default_since))
        try:
            if not text.startswith(PREFIX):
                raise ValueError("unknown cursor format")
            data = json.loads(text[len(PREFIX):])
            return cls(int(data["since"]), {str(k): int(v) for k, v in data.get("seen", {}).items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PermanentError(f"unreadable Jira cursor {text[:80]!r}: {exc}") from None

    def encode(self) -> str:
        return PREFIX + json.dumps({"since": self.since_ms, "seen": self.seen},
                                   separators=(",", ":"), sort_keys=True)

    def window_start(self, overlap: timedelta) -> datetime:
        """The instant the next query starts from: since - overlap, floored to the minute.

        Flooring in UTC equals flooring in any real time zone (offsets are whole minutes).
        """
        start = from_ms(self.since_ms) - overlap
        return start.replace(second=0, microsecond=0)

    def is_new(self, key: str, updated_ms: int) -> bool:
        return updated_ms > self.seen.get(key, -1)

    def accept(self, key: str, updated_ms: int) -> None:
        self.seen[key] = updated_ms
        self.since_ms = max(self.since_ms, updated_ms)

    def prune(self, overlap: timedelta) -> None:
        """Forget deliveries the next window can no longer return."""
        floor = to_ms(self.window_start(overlap))
        self.seen = {k: v for k, v in self.seen.items() if v >= floor}
