"""Idempotency keys of an outbox batch's creates, looked up together before the batch is sent.

Rules:
- Before a batch is applied, the keys of its creates that were never sent are looked up with
  one ``find_by_idempotency_keys`` per connector (one query per chunk of keys where the tracker
  can, see each connector), instead of one lookup per create.
- A create uses that answer once, and only while it has never been sent; a create that may have
  gone out (a lost reply, a crash) looks its key up again itself, after the tracker's lookup lag.
- A connector that fails the batch lookup leaves each create to look its own key up, so the
  failure is reported where it always was.
- Also a tracker whose lookup lags behind its writes (``Capabilities.lookup_lag_seconds``:
  Jira's search index) is asked in a batch: a create never sent wrote nothing, so "absent" is
  true for it whatever the lag. A create that may have gone out is never in the batch; it looks
  its key up itself once the lag has passed since it last wrote (core/create_lag.py). The
  duplicate Jira issue of the seeded chaos run came from that lag being counted from the
  create's first send instead (tests/test_create_lag.py), not from the batch.
"""
from __future__ import annotations

import logging
from typing import Any

from core.errors import ConnectorError

log = logging.getLogger("tiersync.outbox")


def look_up_keys(applier: Any, batch: list[Any]) -> None:
    """Fill ``applier.looked_up`` for the batch's first-time creates (see the module rules)."""
    wanted: dict[str, list[str]] = {}
    for action in batch:
        if action.kind == "create" and action.sent is None and action.connector not in applier.blocked:
            wanted.setdefault(action.connector, []).append(action.dedupe_key)
    for name, keys in wanted.items():
        connector = applier.engine.connectors.get(name)
        if connector is None or len(keys) < 2:
            continue
        try:
            found = connector.find_by_idempotency_keys(keys)
        except ConnectorError as exc:
            log.info("%s: looking up %d idempotency keys together failed, one by one instead: %s",
                     name, len(keys), exc)
            continue
        applier.looked_up.update({(name, key): found.get(key) for key in keys})


def looked_up(applier: Any, action: Any, connector: Any) -> Any:
    """The record created with the action's key (None: none), from the batch lookup when it
    answered for this never-sent create, else looked up now."""
    slot = (action.connector, action.dedupe_key)
    if action.sent is None and slot in applier.looked_up:
        return applier.looked_up.pop(slot)
    return connector.find_by_idempotency_key(action.dedupe_key)
