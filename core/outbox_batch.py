"""An outbox batch applied in waves, its bookkeeping chained from one send to the next.

Rules:
- a wave holds at most one action per escalation: the first of each escalation's actions in the
  claimed batch, then the second, and so on (id order). Order per record holds: waves run in
  order, and a record whose action is left pending sits out the rest of the batch;
- the reads a wave's creates and comments need (their actions as stored now, escalations,
  links) are made in one transaction at its start; an update reads its link and escalation in
  the transaction that notes what it will send, as when sent alone;
- what an action will send is noted immediately before its own send, never earlier: a stop, a
  rate limit or a crash between two sends leaves the later actions exactly as they were queued,
  not noted as sent (a noted action pays the recovery of a write of unknown fate: a read before
  a comment, a lookup after the tracker's index lag, a resend);
- what landed is recorded in the transaction that notes the next action's send (or alone, at
  the end of the wave or before any other bookkeeping): one transaction per action instead of
  two to four, and at any moment at most one action is sent and not yet recorded;
- late updates (retries, replays), attachments, comments waiting for their mirror, and the writes
  of a tracker whose update carries its comments (core/outbox_write.py; also an update whose
  comments were queued after the claimed batch's end) go one by one
  (``OutboxApplier.apply_one``), with the same chain flushed before them;
- a failure is recorded for its action alone (``OutboxApplier.fail``); an exception that is not
  a connector error, raised while applying one action, becomes that action's retry (its
  traceback logged) and, after the usual attempts, its dead letter: never the end of the pass.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import bindparam, select

from core import schema as t
from core.outbox_items import WaveReads, batched, read_wave, step

if TYPE_CHECKING:
    from core.engine import CycleReport
    from core.outbox import OutboxApplier
    from core.store import OutboxRow

PENDING_OF = select(t.outbox.c.escalation_id, t.outbox.c.connector).where(
    t.outbox.c.id.in_(bindparam("b_ids", expanding=True)) & (t.outbox.c.state == "pending"))
PENDING_COMMENTS_OF = select(t.outbox.c.escalation_id, t.outbox.c.connector, t.outbox.c.result).where(
    t.outbox.c.escalation_id.in_(bindparam("b_ids", expanding=True))
    & (t.outbox.c.kind == "comment") & (t.outbox.c.state == "pending"))
CHUNK = 500  # escalations per IN (...) lookup
Landing = Callable[[Any], None]


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


class Chain:
    """The landing of the action sent last, waiting to be committed with the next action's
    note (see the module rules)."""

    def __init__(self, applier: "OutboxApplier", report: "CycleReport"):
        self.applier, self.report = applier, report
        self.held: tuple["OutboxRow", Any, Landing, int] | None = None

    def hold(self, action: "OutboxRow", connector: Any, landing: Landing, count: int = 1) -> None:
        """``action`` was sent: ``landing`` records what landed, in the next transaction
        (``count``: the actions it finishes, a joined comment's parts)."""
        self.flush()
        self.held = (action, connector, landing, count)

    def commit(self, work: Callable[[Any], Any]) -> Any:
        """Run ``work`` in a transaction with the held landing; ``work``'s result. When that
        transaction fails, the landing is recorded alone first (its failure for it alone), then
        ``work`` alone (its failure is the caller's)."""
        held, self.held = self.held, None
        store = self.applier.store
        if held is not None:
            try:
                with store.transaction() as tx:
                    held[2](tx)
                    result = work(tx)
            except Exception:  # noqa: BLE001 - each is tried alone below, where its error shows
                self._land(held)
            else:
                self.report.actions_done += held[3]
                return result
        with store.transaction() as tx:
            return work(tx)

    def flush(self) -> None:
        """Record the held landing alone (before other bookkeeping, or at the end)."""
        held, self.held = self.held, None
        if held is not None:
            self._land(held)

    def _land(self, held: tuple["OutboxRow", Any, Landing, int]) -> None:
        action, connector, landing, count = held
        try:
            with self.applier.store.transaction() as tx:
                landing(tx)
        except Exception as exc:  # noqa: BLE001 - recorded for this action alone
            self.applier.failed(action, connector, exc, self.report)
            return
        self.report.actions_done += count


def apply_wave(applier: "OutboxApplier", wave: list["OutboxRow"], report: "CycleReport",
               stop: Callable[[], bool], carried: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Apply one wave; the records (escalation, tracker) whose action is still pending.
    ``carried``: records whose update may carry a comment queued after it (one by one)."""
    chain = Chain(applier, report)
    try:
        reads = read_wave(applier, [a for a in wave if batched(applier, a, carried)])
        for action in wave:
            if stop():
                report.stopped_early = True
                break
            worker = applier.engine.worker
            if worker is not None and not worker.alive():
                break  # our lease may have lapsed: the claims may be another daemon's now
            if action.connector in applier.blocked or action.id in applier.merged:
                continue
            _apply(applier, chain, reads, action, report, carried)
    finally:
        chain.flush()
    return still_pending(applier, [a.id for a in wave])


def _apply(applier: "OutboxApplier", chain: Chain, reads: WaveReads, action: "OutboxRow",
           report: "CycleReport", carried: set[tuple[str, str]]) -> None:
    if not batched(applier, action, carried):
        chain.flush()
        applier.apply_one(action, report)
        return
    connector = applier.engine.connectors[action.connector]  # batched() checked it
    try:
        step(applier, chain, reads, action, connector, report)
    except Exception as exc:  # noqa: BLE001 - this action's failure alone (see the rules)
        chain.flush()
        applier.failed(action, connector, exc, report)


def still_pending(applier: "OutboxApplier", ids: list[int]) -> set[tuple[str, str]]:
    if not ids:
        return set()
    with applier.store.transaction() as tx:
        rows = tx.execute(PENDING_OF, {"b_ids": ids}).all()
    return {(row.escalation_id, row.connector) for row in rows}


def carried_records(applier: "OutboxApplier", batch: list["OutboxRow"]) -> set[tuple[str, str]]:
    """Records with a never-sent comment queued, in the batch or after it (a claimed batch may
    end between a record's update and its comments): their update, on a tracker whose update
    carries its comments (core/outbox_write.py), goes one by one, which carries them."""
    out = {(a.escalation_id, a.connector) for a in batch if a.kind == "comment" and a.sent is None}
    connectors = applier.engine.connectors
    wanted = sorted({a.escalation_id for a in batch if a.kind == "update"
                     and (a.escalation_id, a.connector) not in out and a.connector in connectors
                     and connectors[a.connector].capabilities().versioned_comments})
    if not wanted:
        return out
    with applier.store.transaction() as tx:
        for start in range(0, len(wanted), CHUNK):
            rows = tx.execute(PENDING_COMMENTS_OF, {"b_ids": wanted[start:start + CHUNK]}).all()
            out |= {(row.escalation_id, row.connector) for row in rows
                    if not (isinstance(row.result, dict) and row.result.get("sent") is not None)}
    return out
