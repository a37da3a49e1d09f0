"""An outbox batch applied in waves, with its bookkeeping batched per wave.

Rules:
- a wave holds at most one action per escalation: the first of each escalation's actions in the
  claimed batch, then the second, and so on (id order). Order per record holds: waves run in
  order, and a record whose action is left pending sits out the rest of the batch. Nothing one
  action's bookkeeping writes is read by another's in the same wave;
- creates, comments and first-time updates go the batched way; late updates (retries, replays),
  attachments and comments waiting for their mirror go one by one as before (core/outbox.py);
- the crash guarantees are the outbox's: what each action will send is committed (one
  transaction for the wave, one ``executemany``) before any of them is sent; each is sent on its
  own (the connectors offer no batched writes); what landed is committed in one transaction for
  the wave after the sends;
- a failure (retry, dead letter, conflict, credentials) is recorded for its action alone, in its
  own transaction, as before: the others' bookkeeping never depends on it. When recording the
  wave's landed actions fails, each is recorded on its own, so one never holds the others back;
- a stop (shutdown, lost lease, a tracker found rate limited) between sends leaves the rest
  pending with their notes written, exactly as a crash at that point would.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import bindparam, select

from core import schema as t
from core.errors import TiersyncError
from core.outbox_items import Item, is_late, land_one, prepare_reads, prepare_writes
from core.store_sql import UPDATE_ACTION

if TYPE_CHECKING:
    from core.engine import CycleReport
    from core.outbox import OutboxApplier
    from core.store import OutboxRow

PENDING_OF = select(t.outbox.c.id, t.outbox.c.escalation_id, t.outbox.c.connector).where(
    t.outbox.c.id.in_(bindparam("b_ids", expanding=True)) & (t.outbox.c.state == "pending"))


def waves(batch: list["OutboxRow"]) -> list[list["OutboxRow"]]:
    """The batch as waves of at most one action per escalation, each in id order."""
    out: list[list["OutboxRow"]] = []
    seen: dict[str, int] = {}
    for action in sorted(batch, key=lambda a: a.id):
        rank = seen.get(action.escalation_id, 0)
        seen[action.escalation_id] = rank + 1
        if rank == len(out):
            out.append([])
        out[rank].append(action)
    return out


def batched(action: "OutboxRow") -> bool:
    """Whether the action goes the batched way (see the module rules)."""
    return action.kind in ("create", "comment") or (action.kind == "update" and not is_late(action))


def apply_wave(applier: "OutboxApplier", wave: list["OutboxRow"], report: "CycleReport",
               stop: Callable[[], bool]) -> set[tuple[str, str]]:
    """Apply one wave; the records (escalation, tracker) whose action is still pending."""
    for action in wave:
        if not batched(action) and _may_send(applier, action, report, stop):
            applier.apply_one(action, report)
    items = prepare_reads(applier, [a for a in wave if batched(a)], report)
    items = prepare_writes(applier, items, report)
    landed: list[Item] = []
    try:
        for item in items:
            if not _may_send(applier, item.action, report, stop):
                break
            if _send(applier, item, report):
                landed.append(item)
    finally:
        record_landed(applier, landed, report)
    return still_pending(applier, [a.id for a in wave])


def _may_send(applier: "OutboxApplier", action: "OutboxRow", report: "CycleReport",
              stop: Callable[[], bool]) -> bool:
    if stop():
        report.stopped_early = True
        return False
    worker = applier.engine.worker
    if worker is not None and not worker.alive():
        return False  # our lease may have lapsed: the claims may be another daemon's now
    return action.connector not in applier.blocked


def _send(applier: "OutboxApplier", item: Item, report: "CycleReport") -> bool:
    """Send one action; a failure is recorded for it alone. Whether it landed."""
    try:
        item.send()
    except TiersyncError as exc:
        applier.fail(item.action, item.connector, exc, report)
        return False
    return True


def record_landed(applier: "OutboxApplier", landed: list[Item], report: "CycleReport") -> None:
    """What landed, in one transaction; one by one when that fails (see the module rules)."""
    if not landed:
        return
    store = applier.store
    try:
        with store.transaction() as tx:
            finishes = [land_one(applier, tx, item, report) for item in landed]
            tx.execute(UPDATE_ACTION, finishes)
    except Exception:  # noqa: BLE001 - each is recorded alone below, where its error shows
        _record_alone(applier, landed, report)
        return
    for item in landed:
        item.counted(report)


def _record_alone(applier: "OutboxApplier", landed: list[Item], report: "CycleReport") -> None:
    for item in landed:
        try:
            with applier.store.transaction() as tx:
                tx.execute(UPDATE_ACTION, [land_one(applier, tx, item, report)])
        except TiersyncError as exc:
            applier.fail(item.action, item.connector, exc, report)
            continue
        item.counted(report)


def still_pending(applier: "OutboxApplier", ids: list[int]) -> set[tuple[str, str]]:
    if not ids:
        return set()
    with applier.store.transaction() as tx:
        rows = tx.execute(PENDING_OF, {"b_ids": ids}).all()
    return {(row.escalation_id, row.connector) for row in rows}

