"""A create whose outcome is unknown is looked up only once the tracker's search index can show
it: ``lookup_lag_seconds`` after the create last wrote to its record, not after it was first
sent (core/create_lag.py). The race behind the seeded chaos run's duplicate Jira issue (issue 11
item 8): a create flow that goes on writing after its POST (back link, status walk) and then
loses a reply was looked up too early, "not found", and created again."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from connectors.memory import MemoryConnector
from core.connector import Capabilities, OriginRef, Page, RemoteRecord
from core.errors import Retryable
from tests.engine_helpers import Clock, make_engine, partner_ticket

LAG = 60.0  # seconds the index takes to show a record's last write (more than the backoff)
FLOW = 20.0  # seconds the create goes on writing to the new record after its POST


class IndexedTracker(MemoryConnector):
    """A tracker whose key lookup (and feed) is a search index showing a record only once its
    last write is ``LAG`` old, as the Jira simulator's index does (simulators/jira_index.py);
    its create writes for ``FLOW`` seconds after the POST, then loses its reply."""

    def __init__(self, name: str, clock: Clock):
        super().__init__(name)
        self.test_clock = clock
        self.last_write: dict[str, datetime] = {}
        self.lose_replies = 1

    def capabilities(self) -> Capabilities:
        return Capabilities(max_page_size=self.config.page_size, lookup_lag_seconds=LAG)

    def create(self, fields: dict[str, Any], *, idempotency_key: str,
               origin: OriginRef | None = None) -> RemoteRecord:
        record = super().create(fields, idempotency_key=idempotency_key, origin=origin)
        self.last_write[record.id] = self.test_clock.advance(seconds=FLOW)  # back link, status
        if self.lose_replies:
            self.lose_replies -= 1
            raise Retryable("connection dropped after the create was processed", tracker=self.name)
        return record

    def _indexed(self, remote_id: str) -> bool:
        written = self.last_write.get(remote_id, datetime.min.replace(tzinfo=timezone.utc))
        return self.test_clock() - written >= timedelta(seconds=LAG)

    def find_by_idempotency_key(self, idempotency_key: str) -> RemoteRecord | None:
        found = super().find_by_idempotency_key(idempotency_key)
        return found if found is not None and self._indexed(found.id) else None

    def find_by_idempotency_keys(self, idempotency_keys: list[str]) -> dict[str, RemoteRecord]:
        found = super().find_by_idempotency_keys(idempotency_keys)
        return {key: record for key, record in found.items() if self._indexed(record.id)}

    def fetch_changes(self, cursor: str | None) -> Iterator[Page]:
        return iter(())  # the feed is the same index: it shows nothing new within this test


def _creates(tracker: IndexedTracker) -> int:
    return len([c for c in tracker.calls if c[0] == "create"])


def test_a_create_that_wrote_after_its_post_is_not_looked_up_before_the_index_shows_it(tmp_path):
    clock = Clock()
    mirror = IndexedTracker("azure_devops", clock)
    engine, t = make_engine(tmp_path / "s.db", trackers={"zendesk": MemoryConnector("zendesk"),
                                                         "azure_devops": mirror}, clock=clock)
    t["zendesk"].put(partner_ticket())
    engine.run_cycle()  # the create lands, writes on for FLOW seconds, its reply is lost
    assert _creates(mirror) == 1 and len(mirror.records) == 1
    # LAG after the first send, but only LAG - FLOW after the create's last write: the index
    # does not show the record yet, so "not found" proves nothing
    clock.advance(seconds=LAG + 1 - FLOW)
    engine.run_cycle()
    assert _creates(mirror) == 1, "looked up before the index could show it, created again"
    clock.advance(seconds=FLOW)
    engine.run_cycle()  # now the index shows it: found by its key and adopted
    assert _creates(mirror) == 1 and len(mirror.records) == 1
    with engine.store.transaction() as tx:
        done = [a for a in engine.store.actions(tx) if a.kind == "create"]
    assert [a.state for a in done] == ["done"] and done[0].result["found_existing"] is True


def test_a_never_sent_creates_keys_are_looked_up_together_on_a_lagging_tracker(tmp_path):
    clock = Clock()
    mirror = IndexedTracker("azure_devops", clock)
    mirror.lose_replies = 0
    engine, t = make_engine(tmp_path / "s.db", trackers={"zendesk": MemoryConnector("zendesk"),
                                                         "azure_devops": mirror}, clock=clock)
    for n in range(3):
        t["zendesk"].put(partner_ticket(subject=f"1234567890123{n} - case {n}"))
    engine.run_cycle()
    finds = [c for c in mirror.calls if c[0] in ("find", "find_many")]
    # nothing was written for a create never sent: "absent" is true whatever the index lag
    assert [c[0] for c in finds] == ["find_many"] and len(finds[0][1]) == 3
    assert _creates(mirror) == 3 and len(mirror.records) == 3
