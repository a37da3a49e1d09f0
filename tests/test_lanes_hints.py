"""Issue 12 rules inside one process and across engines sharing a store, on in-memory trackers:
a hint pass and a lane never send one action twice (the tracker's send lock, the action read
again under it), and one tracker's Retry-After, seen by one engine, holds every engine back."""
from __future__ import annotations

import threading
import time

from core.engine import CycleReport
from core.errors import PULL, TRACKER, RateLimited
from core.hints import run_hints
from core.lanes import send_lock
from core.outbox import OutboxApplier
from tests.engine_helpers import make_engine, partner_ticket
from tests.test_engine_faults import FaultyConnector


def trackers():
    return {"zendesk": FaultyConnector("zendesk"), "azure_devops": FaultyConnector("azure_devops")}


def opened(tmp_path, name="s.db"):
    """An escalation opened from a Zendesk ticket, its Azure DevOps create queued, not sent."""
    engine, t = make_engine(tmp_path / name, trackers())
    ticket = t["zendesk"].put(partner_ticket())
    with engine.store.transaction() as tx:
        engine.process_records(tx, "zendesk", [t["zendesk"].get(ticket.id)], CycleReport("r0"))
    return engine, t, ticket


def test_a_hint_waiting_for_the_send_lock_does_not_send_what_the_lane_sent(tmp_path):
    engine, t, ticket = opened(tmp_path)
    lock = send_lock(engine, "azure_devops")
    lock.acquire()  # the Azure DevOps lane is sending just now
    hint = threading.Thread(target=run_hints, args=(engine, {"zendesk": [ticket.id]}))
    hint.start()
    time.sleep(0.5)  # the hint has read the ticket and claimed the create, and waits
    assert hint.is_alive()
    assert not [c for c in t["azure_devops"].calls if c[0] == "create"]
    try:
        OutboxApplier(engine).apply(CycleReport("lane"), lambda: False, connector="azure_devops")
    finally:
        lock.release()
    hint.join(10)
    assert [c[0] for c in t["azure_devops"].calls].count("create") == 1
    assert len(t["azure_devops"].records) == 1


def test_a_hint_sends_a_new_mirror_at_once_when_no_lane_is_sending(tmp_path):
    engine, t, ticket = opened(tmp_path)
    report = run_hints(engine, {"zendesk": [ticket.id]})
    assert report.actions_done >= 1 and len(t["azure_devops"].records) == 1


class Limited(FaultyConnector):
    """Its feed answers 429 with a Retry-After once."""

    def __init__(self, name, retry_after, scope=TRACKER):
        super().__init__(name)
        self.retry_after, self.scope = retry_after, scope

    def fetch_changes(self, cursor):
        if self.retry_after is not None:
            wait, self.retry_after = self.retry_after, None
            raise RateLimited("429", retry_after=wait, tracker=self.name, scope=self.scope)
        yield from super().fetch_changes(cursor)


def test_one_engines_retry_after_holds_another_engine_on_the_store_back(tmp_path):
    first, t1 = make_engine(tmp_path / "shared.db", {"zendesk": Limited("zendesk", 120.0),
                                                     "azure_devops": FaultyConnector("azure_devops")})
    second, t2 = make_engine(tmp_path / "shared.db", trackers())
    first.run_cycle()  # Zendesk said 429, Retry-After 120 s
    t2["zendesk"].calls.clear()
    report = second.run_cycle()  # another daemon on the same store, its own Zendesk client
    assert report.rate_limited == 1
    assert not [c for c in t2["zendesk"].calls if c[0] == "fetch"]
    assert report.pulled_from == ["azure_devops"]  # the other tracker goes on
    second.clock.advance(seconds=121)
    later = second.run_cycle()
    assert later.rate_limited == 0 and "zendesk" in later.pulled_from


def _limited_zendesk(tmp_path, scope):
    """An escalation opened from a Zendesk ticket whose change feed answers 429 at the next pull."""
    zendesk = Limited("zendesk", None, scope)
    tmp_path.mkdir()
    engine, t = make_engine(tmp_path / "s.db", {"zendesk": zendesk,
                                                "azure_devops": FaultyConnector("azure_devops")})
    ticket = zendesk.put(partner_ticket())
    with engine.store.transaction() as tx:
        engine.process_records(tx, "zendesk", [zendesk.get(ticket.id)], CycleReport("r0"))
    zendesk.retry_after = 120.0
    return engine, zendesk


def test_a_429_of_the_change_feed_alone_holds_back_pulls_but_not_the_trackers_writes(tmp_path):
    engine, zendesk = _limited_zendesk(tmp_path / "feed", PULL)
    first = engine.run_cycle()  # the feed says 429; the mirror is created and linked back
    assert first.rate_limited == 0 and first.connector_errors
    writes = [c for c in zendesk.calls if c[0] in ("update", "comment")]
    assert writes, zendesk.calls  # the write-back to Zendesk went on meanwhile
    zendesk.calls.clear()
    second = engine.run_cycle()
    assert second.rate_limited == 1 and not [c for c in zendesk.calls if c[0] == "fetch"]
    held, held_zendesk = _limited_zendesk(tmp_path / "account", TRACKER)
    held.run_cycle()  # the account's limit: nothing more goes to Zendesk until its Retry-After
    assert not [c for c in held_zendesk.calls if c[0] in ("update", "comment")], held_zendesk.calls
