"""Verifying exported audit entries without the store (``tiersync audit verify-export``).

An export (``audit --format jsonl``) is a run of the chain: every entry must carry the hash of
its own content, and each must link to the one before it (the first links to whatever preceded
it in the store). Rules for the hash of each entry: with a key, an entry is HMAC-SHA256, or plain
SHA-256 only while no keyed entry came before it (a chain switches to keyed once, never back);
a checkpoint's ``keyed_from`` pins where. Given a checkpoint, the export must contain the
checkpoint's entry (its last seq) with the checkpoint's hash.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from core.audit import entry_hash
from core.audit_chain import CheckpointError


@dataclass
class ExportCheck:
    entries: int = 0
    keyed: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    watched: str | None = None  # hash of the entry asked for (a checkpoint's last seq)
    problems: list[str] = field(default_factory=list)


def _rows(lines: Iterable[str], source: str) -> Iterable[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise CheckpointError(f"{source}:{number}: not a JSON Lines audit export ({exc})") from None


def _keyed(row: dict[str, Any], key: bytes | None, keyed_from: int | None, seen_keyed: bool) -> bool | None:
    """True (HMAC) / False (SHA-256) when the hash matches as allowed, None when it does not."""
    if key is not None and entry_hash(row, key) == row["hash"]:
        return True
    before_key = keyed_from is None or row["seq"] < keyed_from
    if not seen_keyed and before_key and entry_hash(row, None) == row["hash"]:
        return False
    return None


def check_export(lines: Iterable[str], source: str, key: bytes | None,
                 keyed_from: int | None = None, watch_seq: int | None = None) -> ExportCheck:
    result, prev = ExportCheck(), None
    for row in _rows(lines, source):
        result.entries += 1
        result.first_seq = result.first_seq or row["seq"]
        if prev is not None and row["prev_hash"] != prev:
            result.problems.append(f"{source}: entry {row['seq']} does not link to the entry before "
                                   "it (removed or reordered)")
        keyed = _keyed(row, key, keyed_from, result.keyed > 0)
        if keyed is None:
            how = "with TIERSYNC_AUDIT_KEY" if key else "(unkeyed SHA-256; keyed entries need the key)"
            result.problems.append(f"{source}: entry {row['seq']}: content does not match its hash {how}")
        result.keyed += bool(keyed)
        if row["seq"] == watch_seq:
            result.watched = row["hash"]
        prev, result.last_seq, result.last_hash = row["hash"], row["seq"], row["hash"]
    return result


def check_against(result: ExportCheck, checkpoint: dict[str, Any], source: str) -> None:
    """The checkpoint's entry (``watch_seq``) must be in the export with the checkpoint's hash."""
    seq, head = checkpoint.get("last_seq"), checkpoint.get("head")
    if result.watched is None:
        result.problems.append(f"{source}: the export does not hold the checkpoint's entry {seq} "
                               f"(it holds {result.first_seq}-{result.last_seq})")
    elif result.watched != head:
        result.problems.append(f"{source}: entry {seq} has another hash than the checkpoint "
                               "records (rewritten)")
