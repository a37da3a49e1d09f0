"""`tiersync link A B`: connect two records that were escalated by hand before tiersync.

Rules:
- both records must exist in their trackers (each is read once); the two must be in two
  different configured trackers;
- neither linked: the first opens an escalation (as its origin, whether or not its mapping's
  ``starts_escalation`` matches), the second becomes its mirror;
- one linked: the other becomes a mirror of that escalation;
- the record that joins is adopted without a snapshot, so its current values are merged into
  the escalation by the newest change, and the escalation's values are then written where
  they differ (by the next run);
- refused, with the reason: both already linked to different escalations; the escalation
  already has another record in the joining record's tracker; the joining record carries
  tiersync's marker of another escalation in the store (an orphan's marker, naming an
  escalation the store does not hold, does not refuse it). Linking two records already linked
  together is a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import TiersyncError
from core.model import LinkRole
from core.planner import parse_idempotency_key
from core.reconcile import observe
from core.store import LinkRow


class LinkRefused(TiersyncError):
    """The two records cannot be linked; the message says why."""


@dataclass(frozen=True)
class LinkOutcome:
    escalation_id: str
    opened: bool
    joined: str | None  # "tracker:id" of the record that joined, None when already linked


def parse_ref(text: str, trackers) -> tuple[str, str]:
    tracker, _, remote_id = text.partition(":")
    if tracker not in trackers or not remote_id:
        raise LinkRefused(f"give TRACKER:ID with one of {', '.join(trackers)} (got {text!r})")
    return tracker, remote_id


def link_records(engine, first: tuple[str, str], second: tuple[str, str], report) -> LinkOutcome:
    """Link ``second`` to ``first``'s escalation (see the module rules)."""
    if first[0] == second[0]:
        raise LinkRefused(f"{first[0]}:{first[1]} and {second[0]}:{second[1]} are in the same "
                          "tracker; an escalation has one record per tracker")
    engine.planner.run_id = report.run_id
    records = {ref: _read(engine, ref) for ref in (first, second)}
    with engine.store.transaction() as tx:
        links = {ref: engine.store.links_for(tx, ref[0], [ref[1]]).get(ref[1]) for ref in records}
        linked = {ref: link for ref, link in links.items() if link is not None}
        if len(linked) == 2:
            return _both_linked(links, first, second)
        opened = not linked
        if opened:
            escalation_id = _open(engine, tx, first, records[first], report)
            joining = second
        else:
            [(anchor, link)] = linked.items()
            escalation_id, joining = link.escalation_id, second if anchor == first else first
        _join(engine, tx, escalation_id, joining, records[joining], report)
    return LinkOutcome(escalation_id, opened, f"{joining[0]}:{joining[1]}")


def _read(engine, ref: tuple[str, str]):
    try:
        return engine.connectors[ref[0]].get(ref[1])
    except TiersyncError as exc:
        raise LinkRefused(f"{ref[0]}:{ref[1]}: cannot read it: {exc}") from None


def _both_linked(links: dict, first, second) -> LinkOutcome:
    a, b = links[first], links[second]
    if a.escalation_id != b.escalation_id:
        raise LinkRefused(f"{first[0]}:{first[1]} belongs to escalation {a.escalation_id} and "
                          f"{second[0]}:{second[1]} to {b.escalation_id}; refusing to merge two "
                          "escalations")
    return LinkOutcome(a.escalation_id, False, None)


def _open(engine, tx, ref: tuple[str, str], record, report) -> str:
    _refuse_foreign_marker(engine, tx, ref, record, None)
    link = LinkRow(tracker=ref[0], remote_id=ref[1], escalation_id="", role=LinkRole.ORIGIN.value,
                   key=record.key, url=record.url)
    observed = observe(engine.mappings[ref[0]], record, None)
    engine._open(tx, ref[0], record, link, observed, {}, report)
    return link.escalation_id


def _join(engine, tx, escalation_id: str, ref: tuple[str, str], record, report) -> None:
    stored = engine.store.get_escalation(tx, escalation_id)
    other = stored.escalation.link_for(ref[0])
    if other is not None and other.remote_id != ref[1]:
        raise LinkRefused(f"escalation {escalation_id} already has {ref[0]}:{other.key or other.remote_id}; "
                          f"unlink it before linking {ref[0]}:{ref[1]}")
    _refuse_foreign_marker(engine, tx, ref, record, escalation_id)
    link = LinkRow(tracker=ref[0], remote_id=ref[1], escalation_id=escalation_id,
                   role=LinkRole.MIRROR.value, key=record.key, url=record.url)
    engine.planner.adopt_mirror(tx, stored, link, record, engine.clock(), report.run_id, snapshot=False)
    engine.process_records(tx, ref[0], [record], report)


def _refuse_foreign_marker(engine, tx, ref, record, escalation_id: str | None) -> None:
    """A record tiersync created for another escalation of this store is not re-linked; one
    whose marker names an escalation the store does not hold (an orphan `rebuild` reported)
    may be."""
    parsed = parse_idempotency_key(record.idempotency_key)
    if parsed and parsed[0] != escalation_id and engine.store.get_escalation(tx, parsed[0]):
        raise LinkRefused(f"{ref[0]}:{ref[1]} is tiersync's mirror of escalation {parsed[0]} "
                          "(its marker says so); run `tiersync rebuild` to restore that link")
