"""Streaming exports of audit entries: CSV and JSON Lines, row by row (no list in memory)."""
from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Any, Iterator, TextIO

COLUMNS = ["seq", "at", "run_id", "escalation_id", "tracker", "remote_id", "remote_version",
           "mapping", "rule", "action", "before", "after", "result", "prev_hash", "hash"]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    return value


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """CSV with a header; JSON columns (before, after) as JSON text."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({name: _cell(row.get(name)) for name in COLUMNS})
        count += 1
    return count
