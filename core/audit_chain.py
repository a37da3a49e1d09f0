"""Verifying the audit chain, checkpoints for auditors, and pruning that keeps it verifiable.

Rules:
- every entry links to the previous entry's hash and carries the hash of its own content; the
  first entry links to the genesis hash, or after pruning to the recorded anchor (the hash of the
  last pruned entry);
- entries from ``keyed_from`` on are HMAC-SHA256 with ``TIERSYNC_AUDIT_KEY``, earlier ones plain
  SHA-256 (chains written before a key was set stay verifiable);
- the walk must end at the recorded head (entries appended less those pruned; last hash): a cut
  log fails even though every remaining link holds;
- a checkpoint (count, last seq, head, time; HMAC-signed with the key) kept outside the store pins
  the head: the entry at that position must still carry that hash, so rewriting the store's head
  too is caught. A checkpoint written when pruning pins the anchor the remaining chain starts at.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from core import schema as t
from core.audit_batch import flush
from core.audit import GENESIS, AuditEntry, AuditLog, entry_hash
from core.audit_schema import audit_chain
from core.errors import TiersyncError

CHECKPOINT_FORMAT = "tiersync-audit-checkpoint/1"


class CheckpointError(TiersyncError):
    """A checkpoint file that cannot be read or is not a tiersync audit checkpoint."""


@dataclass(frozen=True)
class Head:
    count: int  # entries ever appended
    last_seq: int | None
    head: str
    keyed_from: int | None
    pruned_count: int
    pruned_through: int | None
    anchor: str | None

    def text(self) -> str:
        return f"{self.count}:{self.head}"


@dataclass(frozen=True)
class Expectation:
    """A head the chain must contain: the entry at position ``count`` carries ``head``."""

    count: int
    head: str
    source: str  # "--expect-head" or the checkpoint file's name


@dataclass
class Verification:
    head: Head
    walked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_head(tx: Connection) -> Head:
    flush(tx)  # entries appended in this transaction count
    row = tx.execute(select(audit_chain).where(audit_chain.c.id == 1)).one()
    return Head(count=row.count, last_seq=row.last_seq, head=row.head, keyed_from=row.keyed_from,
                pruned_count=row.pruned_count or 0, pruned_through=row.pruned_through,
                anchor=row.anchor)


def parse_expect_head(value: str) -> Expectation:
    """``COUNT:HASH`` (the hash may be shortened to 12 or more hex digits)."""
    count, _, digest = value.partition(":")
    if not count.isdigit() or len(digest) < 12 or any(c not in "0123456789abcdef" for c in digest):
        raise CheckpointError(f"--expect-head {value!r}: give COUNT:HASH as `audit --verify` "
                              "prints it (hash of at least 12 hex digits)")
    return Expectation(int(count), digest, "--expect-head")


# -- the walk -----------------------------------------------------------------------------------
def verify_chain(tx: Connection, key: bytes | None,
                 expectations: list[Expectation] = ()) -> Verification:
    head = read_head(tx)
    result = Verification(head)
    prev, last = head.anchor or GENESIS, None
    pending = {e.count: e for e in expectations if e.count > head.pruned_count}
    for row in _rows(tx):
        result.walked += 1
        _check_row(row, prev, key, head, result)
        position = head.pruned_count + result.walked
        if position in pending:
            _check_expected(pending.pop(position), row["hash"], result)
        prev = last = row["hash"]
    _check_end(head, last, result)
    for expectation in expectations:
        _check_outside(expectation, head, pending, result)
    _note_keying(head, key, result)
    return result


def _rows(tx: Connection) -> Iterator[dict[str, Any]]:
    query = select(t.audit).order_by(t.audit.c.seq)
    for row in tx.execute(query.execution_options(yield_per=2000)):
        yield dict(row._mapping)


def _check_row(row, prev: str, key: bytes | None, head: Head, result: Verification) -> None:
    seq = row["seq"]
    if row["prev_hash"] != prev:
        result.problems.append(f"audit entry {seq}: previous-hash link broken "
                               "(an entry before it was removed or reordered)")
    keyed = head.keyed_from is not None and seq >= head.keyed_from
    if keyed and key is None:
        if seq == head.keyed_from:
            result.problems.append(f"audit entries from {seq} on are keyed: set TIERSYNC_AUDIT_KEY "
                                   "to verify their content")
        return
    if entry_hash(row, key if keyed else None) != row["hash"]:
        how = "with TIERSYNC_AUDIT_KEY" if keyed else "(unkeyed SHA-256)"
        result.problems.append(f"audit entry {seq}: content does not match its hash {how} "
                               "(the entry was edited, or rewritten without the key)")


def _check_end(head: Head, last: str | None, result: Verification) -> None:
    expected = head.count - head.pruned_count
    if result.walked != expected:
        result.problems.append(f"the log holds {result.walked} entries but its head records "
                               f"{expected} (entries were removed or added outside tiersync)")
    if (last or head.anchor or GENESIS) != head.head:
        result.problems.append("the last entry is not the recorded head "
                               f"{head.text()} (the log was cut or rewritten)")


def _check_expected(expectation: Expectation, digest: str, result: Verification) -> None:
    if not digest.startswith(expectation.head):
        result.problems.append(f"{expectation.source}: entry {expectation.count} has hash "
                               f"{digest[:16]}…, expected {expectation.head[:16]}… (rewritten)")


def _check_outside(expectation: Expectation, head: Head, pending: dict, result: Verification) -> None:
    """An expected head not met by the walk: pruned past, at the anchor, or cut off."""
    if expectation.count in pending:
        result.problems.append(f"{expectation.source}: the log ends at entry {head.count}, before "
                               f"entry {expectation.count} it held (the log was cut)")
    elif expectation.count == head.pruned_count and head.pruned_count:
        if not (head.anchor or "").startswith(expectation.head):
            result.problems.append(f"{expectation.source}: the prune anchor is not the head "
                                   "the checkpoint recorded")
        else:
            result.notes.append(f"{expectation.source}: the log goes on from this checkpoint "
                                "(written when pruning)")
    elif expectation.count < head.pruned_count:
        result.problems.append(f"{expectation.source}: entry {expectation.count} was pruned "
                               f"(entries 1-{head.pruned_count} are gone); verify with the "
                               "checkpoint written when pruning")


def _note_keying(head: Head, key: bytes | None, result: Verification) -> None:
    if head.keyed_from is None and key is not None and head.count:
        result.notes.append("TIERSYNC_AUDIT_KEY is set but no entry is keyed yet: entries are "
                            "keyed from the next one written")


# -- checkpoints --------------------------------------------------------------------------------
def make_checkpoint(head: Head, key: bytes | None, now: datetime) -> dict[str, Any]:
    body = {"format": CHECKPOINT_FORMAT, "count": head.count, "last_seq": head.last_seq,
            "head": head.head, "keyed_from": head.keyed_from, "pruned_count": head.pruned_count,
            "at": now.isoformat()}
    return dict(body, signature=_sign(body, key))


def prune_checkpoint(head: Head, key: bytes | None, now: datetime) -> dict[str, Any]:
    """The checkpoint at the prune point: the remaining chain starts from this head."""
    body = {"format": CHECKPOINT_FORMAT, "count": head.pruned_count, "last_seq": head.pruned_through,
            "head": head.anchor, "keyed_from": head.keyed_from, "pruned_count": head.pruned_count,
            "at": now.isoformat()}
    return dict(body, signature=_sign(body, key))


def _sign(body: dict[str, Any], key: bytes | None) -> str | None:
    if key is None:
        return None
    canonical = json.dumps(body, sort_keys=True).encode("utf-8")
    return "hmac-sha256:" + hmac.new(key, canonical, hashlib.sha256).hexdigest()


def load_checkpoint(text: str, source: str, key: bytes | None) -> tuple[Expectation, list[str]]:
    """The expectation a checkpoint file states, and problems with its signature."""
    try:
        data = json.loads(text)
        body = {k: data[k] for k in ("format", "count", "last_seq", "head", "keyed_from",
                                     "pruned_count", "at")}
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{source}: not a tiersync audit checkpoint ({exc})") from None
    if body["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source}: format {body['format']!r}, expected {CHECKPOINT_FORMAT}")
    problems = []
    signature = data.get("signature")
    if signature is None:
        if key is not None:
            problems.append(f"{source}: the checkpoint is not signed (written without a key)")
    elif key is None:
        problems.append(f"{source}: the checkpoint is signed: set TIERSYNC_AUDIT_KEY to check it")
    elif not hmac.compare_digest(signature, _sign(body, key)):
        problems.append(f"{source}: the checkpoint's signature does not match (edited, or "
                        "another key)")
    return Expectation(int(body["count"]), str(body["head"] or GENESIS), source), problems


def checkpoint_json(checkpoint: dict[str, Any]) -> str:
    return json.dumps(checkpoint, indent=2, sort_keys=True) + "\n"


# -- pruning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pruned:
    removed: int
    through_seq: int | None
    head: Head  # after pruning


def prune_bound(tx: Connection, before: datetime) -> int | None:
    """The last seq of the chain's prefix older than ``before`` (None when nothing to prune).

    Only a prefix is removed (up to the first entry at or after ``before``), so the chain stays
    one unbroken run."""
    first_kept = tx.execute(select(func.min(t.audit.c.seq)).where(t.audit.c.at >= before)).scalar()
    bound = select(func.max(t.audit.c.seq))
    if first_kept is not None:
        bound = bound.where(t.audit.c.seq < first_kept)
    through = tx.execute(bound).scalar()
    head = read_head(tx)
    if through is None or (head.pruned_through is not None and through <= head.pruned_through):
        return None
    return through


def prune_through(tx: Connection, log: AuditLog, through: int, before: datetime, run_id: str,
                  now: datetime) -> Pruned:
    """Remove entries up to ``through``; the rest verifies from the anchor (that entry's hash).
    The prune itself is logged as an ``audit-pruned`` entry."""
    head = read_head(tx)
    anchor = tx.execute(select(t.audit.c.hash).where(t.audit.c.seq == through)).scalar()
    removed = tx.execute(delete(t.audit).where(t.audit.c.seq <= through)).rowcount
    tx.execute(update(audit_chain).where(audit_chain.c.id == 1).values(
        pruned_through=through, pruned_count=head.pruned_count + removed, anchor=anchor))
    log.append(tx, AuditEntry(run_id=run_id, at=now, action="audit-pruned", rule="audit.prune",
                              after={"through_seq": through, "removed": removed, "anchor": anchor,
                                     "pruned_count": head.pruned_count + removed,
                                     "before": before.isoformat()}))
    return Pruned(removed, through, read_head(tx))


def head_dict(head: Head) -> dict[str, Any]:
    return asdict(head)
