"""Long text in append-only records: kept recognisable, not copied in full.

The audit log is never pruned, so a 5 MB description copied into an entry at every change would
grow it without bound. A string longer than :data:`LIMIT` characters is stored as its first
characters, its length and its SHA-256 (enough to tell which version an entry saw, and to check
it against the escalation's history); shorter values are stored as they are.
"""
from __future__ import annotations

import hashlib
from typing import Any

LIMIT = 2000
KEEP = 200


def compact(value: Any) -> Any:
    """``value`` with every string longer than LIMIT shortened to a recognisable digest."""
    if isinstance(value, str):
        if len(value) <= LIMIT:
            return value
        digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()
        return f"{value[:KEEP]}… [{len(value)} characters, sha256 {digest}]"
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [compact(v) for v in value]
    return value
