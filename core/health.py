"""What is still wrong after a cycle, whichever run caused it: the exit code keeps telling.

Rules (the run's exit code is 1 while any holds; README "Exit codes"):
- a tracker record is quarantined and not resolved (it clears itself when the record syncs,
  or with ``tiersync quarantine --retry``);
- an outbox action is dead-lettered (until ``tiersync replay`` sends it or it is superseded);
- an outbox action has been retrying for longer than ``engine.retry_alert_seconds`` since it
  was queued (a tracker that keeps failing is an alert even before the action gives up).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from core import schema as t


@dataclass(frozen=True)
class Outstanding:
    quarantined: int
    dead_letters: int
    retrying_too_long: int

    @property
    def any(self) -> bool:
        return bool(self.quarantined or self.dead_letters or self.retrying_too_long)


def outstanding(tx: Connection, now: datetime, retry_alert_seconds: float) -> Outstanding:
    quarantined = tx.execute(select(func.count()).select_from(t.quarantine).where(
        t.quarantine.c.resolved_at.is_(None))).scalar() or 0
    dead = tx.execute(select(func.count()).select_from(t.outbox).where(
        t.outbox.c.state == "dead")).scalar() or 0
    since = now - timedelta(seconds=retry_alert_seconds)
    retrying = tx.execute(select(func.count()).select_from(t.outbox).where(
        (t.outbox.c.state == "pending") & t.outbox.c.last_error.is_not(None)
        & (t.outbox.c.created_at <= since))).scalar() or 0
    return Outstanding(quarantined, dead, retrying)
