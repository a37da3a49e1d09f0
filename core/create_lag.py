"""When a create that may have gone out can be looked up by its idempotency key.

A tracker whose key lookup is a search index (``Capabilities.lookup_lag_seconds``: Jira's JQL)
finds a record only some time after its *last* write, not after its first: the simulator, like
Jira Cloud's eventually consistent search, indexes an issue once its latest change is ``lag``
old, and a create goes on writing to the new record after the POST (its back link, the walk to
its status) before it returns. Counting the lag from the moment the create was first sent
(as tiersync did) let a lookup made after a slow create flow miss the new record: "not found",
created again, a duplicate (the seeded chaos run, issue 11 item 8).

Rules:
- ``create_at`` in the action's ``sent`` note is when the record may last have been written:
  noted before the first send, and again when an attempt fails (its reply lost, a later step
  failing): the create's own writes are over by then;
- ``by`` names the worker that sent it; a create sent by another process (one that was killed
  mid-create) may have written until that process ended, which is before this one started: the
  lag then runs from this process's start at the earliest;
- a create never sent (no ``sent`` note) wrote nothing, so a lookup answering "absent" for it
  is true whatever the lag: such keys may be looked up together (core/outbox_lookup.py).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any


def create_note(engine: Any) -> dict[str, Any]:
    """The ``sent`` note of a create about to go out, or one whose attempt just ended."""
    return {"create": True, "create_at": engine.clock().isoformat(), "by": engine.worker_id}


def last_create_write(engine: Any, sent: dict[str, Any]) -> datetime:
    """The latest the create noted in ``sent`` may have written to its record."""
    at = datetime.fromisoformat(sent["create_at"])
    started = getattr(engine, "started_at", None)
    if sent.get("by") != engine.worker_id and started is not None:
        return max(at, started)
    return at
