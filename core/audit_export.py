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


TABLE = [("seq", 7), ("at", 19), ("run", 16), ("escalation", 20), ("record", 22), ("action", 22),
         ("rule", 34), ("result", 0)]


def table_header() -> str:
    return _line([name for name, _ in TABLE])


def table_line(row: dict[str, Any]) -> str:
    """One entry as a fixed-width line (streamed: no width measuring over the whole log)."""
    record = f"{row['tracker']}:{row['remote_id']}" if row.get("tracker") else ""
    return _line([str(row["seq"]), row["at"].strftime("%Y-%m-%d %H:%M:%S"), row["run_id"] or "",
                  row["escalation_id"] or "", record, row["action"], row["rule"] or "",
                  (row["result"] or "")[:60]])


def _line(cells: list[str]) -> str:
    parts = [cell if width == 0 else cell[:width].ljust(width) for cell, (_, width) in zip(cells, TABLE)]
    return " ".join(parts).rstrip()
