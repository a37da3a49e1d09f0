"""An escalation's JSON form (``model_dump(mode="json")``), made once per object.

Rules:
- one escalation object is dumped by several steps of the record that produced it (its write,
  its history's reverse patch, its audit entry, the redacted copy the planner maps): the last
  dumps are remembered per thread, by object identity; the cache holds the object itself, so its
  id cannot be reused by another object while it is remembered;
- tiersync never changes an escalation in place (each step makes a new one: ``model_validate``,
  ``model_copy``), so a dump stays the object's; the dict returned is shared: read it, never
  change it (``apply_changes`` and the like dump afresh, in Python mode, to change a copy).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from core.model import Escalation

SIZE = 16  # a record's before and after, and a few more: a page's records come one at a time

_LOCAL = threading.local()


def as_json(escalation: Escalation) -> dict[str, Any]:
    """``escalation.model_dump(mode="json")``, remembered for the object (read-only)."""
    cache: OrderedDict[int, tuple[Escalation, dict[str, Any]]] | None = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = OrderedDict()
    key = id(escalation)
    found = cache.get(key)
    if found is not None and found[0] is escalation:
        cache.move_to_end(key)
        return found[1]
    data = escalation.model_dump(mode="json")
    cache[key] = (escalation, data)
    if len(cache) > SIZE:
        cache.popitem(last=False)
    return data
