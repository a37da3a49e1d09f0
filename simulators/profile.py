"""The simulators' realism profile and the sliding windows their vendor limits use (issue 9).

Rules:
- ``Profile.realistic`` (the default) switches on the vendor behaviours that make the simulators
  at least as strict as the real services (each one cites its vendor page where it is coded);
  ``LENIENT`` switches them off, for a test that needs it and says why.
- ``Profile.time_scale`` multiplies every vendor time window (Zendesk's one-minute export
  hold-back, rate-limit windows, index lag) so that benchmarks and the demo finish in seconds or
  minutes; a test that checks one of those behaviours runs it at ``time_scale=1``.
  ``Retry-After`` is scaled with the window it belongs to.
- A :class:`Window` counts events in a sliding window of ``limit`` per ``seconds``; ``take``
  answers 0 when there was room (and counts the event) or the seconds until there will be.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Profile:
    realistic: bool = True
    time_scale: float = 1.0

    def seconds(self, vendor_seconds: float) -> float:
        """A vendor's time window at this profile's scale."""
        return vendor_seconds * self.time_scale

    def changed(self, changes: dict[str, Any]) -> "Profile":
        unknown = set(changes) - {"realistic", "time_scale"}
        if unknown:
            raise KeyError(f"unknown profile setting(s): {', '.join(sorted(unknown))}")
        scale = float(changes.get("time_scale", self.time_scale))
        if not 0 < scale <= 1:
            raise ValueError(f"time_scale must be in (0, 1], got {scale}")
        return replace(self, realistic=bool(changes.get("realistic", self.realistic)),
                       time_scale=scale)


REALISTIC = Profile()
LENIENT = Profile(realistic=False)


@dataclass
class Window:
    """At most ``limit`` events per sliding ``seconds``."""

    limit: int
    seconds: float
    events: list[float] = field(default_factory=list)

    def take(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        self.events = [t for t in self.events if now - t < self.seconds]
        if len(self.events) >= self.limit:
            return max(0.001, self.seconds - (now - self.events[0]))
        self.events.append(now)
        return 0.0

    def remaining(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return max(0, self.limit - len([t for t in self.events if now - t < self.seconds]))


def retry_after_text(seconds: float, profile: Profile) -> str:
    """``Retry-After`` as the vendors send it (whole seconds, rounded up); at a reduced time
    scale with a decimal fraction, so that a scaled window is not waited for at full length."""
    if profile.time_scale >= 1:
        return str(max(1, math.ceil(seconds)))
    return f"{max(0.01, seconds):.2f}"
