"""The engine under the faults the chaos bench injects: replies lost after the write happened,
the process dying between a remote write and the local commit, conflicts caused by tiersync's
own earlier attempt, tracker changes hidden behind tiersync's own comments, mirrors adopted
after a crash, and the periodic re-evaluation of unchanged escalations.

Connectors are the in-memory one with fault hooks; the real connectors and simulators are
exercised end to end by tests/test_chaos.py.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from core.connector import RemoteComment
from connectors.memory import MemoryConnector
from core.errors import Conflict, Retryable
from core.model import State
from tests.engine_helpers import Clock, make_engine, partner_ticket


class Killed(BaseException):
    """The process dies here (SIGKILL): nothing after this point runs or commits."""


class FaultyConnector(MemoryConnector):
    """A memory tracker whose next writes can fail in the ways real trackers do."""

    def __init__(self, name: str):
        super().__init__(name)
        self.after_update: list[BaseException] = []  # applied, then this is raised (reply lost)
        self.after_comment: list[BaseException] = []
        self.before_comment: list[BaseException] = []  # raised before anything is written
        self.get_fails: list[BaseException] = []
        self.hook = None  # runs once before the next read or comment ("a person edits now")

    def _fire_hook(self) -> None:
        if self.hook is not None:
            hook, self.hook = self.hook, None
            hook()

    def get(self, remote_id):
        self._fire_hook()
        if self.get_fails:
            raise self.get_fails.pop(0)
        return super().get(remote_id)

    def update(self, remote_id, fields, *, expected_version):
        record = super().update(remote_id, fields, expected_version=expected_version)
        if self.after_update:
            raise self.after_update.pop(0)
        return record

    def add_comment(self, remote_id, body, *, public):
        self._fire_hook()
        if self.before_comment:
            raise self.before_comment.pop(0)
        comment_id = super().add_comment(remote_id, body, public=public)
        if self.after_comment:
            raise self.after_comment.pop(0)
        return comment_id


def trackers() -> dict[str, FaultyConnector]:
    return {"zendesk": FaultyConnector("zendesk"), "azure_devops": FaultyConnector("azure_devops")}


def cycle(engine) -> None:
    """One cycle; a simulated kill ends it like SIGKILL would (no cleanup, no commit)."""
    try:
        engine.run_cycle()
    except Killed:
        pass


def engine_on(tmp_path, t, clock, **kwargs):
    """An engine (a new process) on the store in ``tmp_path``; failed actions retry at once."""
    engine, _ = make_engine(tmp_path / "s.db", t, clock, **kwargs)
    engine.settings.backoff_seconds = 0.0
    return engine


restart = engine_on


def escalation(engine, ticket_id: str):
    with engine.store.transaction() as tx:
        link = engine.store.links_for(tx, "zendesk", [ticket_id])[ticket_id]
        return engine.store.get_escalation(tx, link.escalation_id).escalation


def pending(engine) -> int:
    with engine.store.transaction() as tx:
        return engine.store.count_actions(tx).get("pending", 0)


def bodies(record) -> list[str]:
    return [c.body for c in record.comments]


def started(tmp_path, working: bool = True, **ticket):
    """An escalation with its Azure DevOps mirror, tier 2 working on it (Zendesk: on hold)."""
    clock = Clock()
    t = trackers()
    engine = engine_on(tmp_path, t, clock)
    ticket = t["zendesk"].put(partner_ticket(**ticket))
    engine.run_cycle()
    item_id = next(iter(t["azure_devops"].records))
    if working:
        t["azure_devops"].edit(item_id, **{"System.State": "Actively Working"})
        engine.run_cycle()
        engine.run_cycle()
        assert t["zendesk"].records[ticket.id].data["status"] == "hold"
    return engine, t, clock, ticket.id, item_id


# -- updates whose outcome tiersync never learned --------------------------------------------------
@pytest.mark.parametrize("failure", [Retryable("reply lost: connection dropped"), Killed()],
                         ids=["reply-lost", "killed-before-commit"])
def test_own_update_seen_later_is_not_a_tracker_change(tmp_path, failure):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    t["azure_devops"].edit(item_id, **{"System.State": "Solution Proposed"})
    # Zendesk's status for "solution proposed" is "open", which read back alone would mean
    # "waiting on internal": the update lands but tiersync never hears back
    t["zendesk"].after_update.append(failure)
    cycle(engine)
    assert t["zendesk"].records[ticket_id].data["status"] == "open"
    engine = restart(tmp_path, t, clock)
    engine.run_cycle()
    engine.run_cycle()
    assert escalation(engine, ticket_id).state is State.SOLUTION_PROPOSED
    assert not any("waiting_on_internal" in b for b in bodies(t["azure_devops"].records[item_id]))
    assert t["azure_devops"].records[item_id].data["System.State"] == "Solution Proposed"
    assert pending(engine) == 0


def test_conflict_from_own_earlier_attempt_is_recognised(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    t["azure_devops"].edit(item_id, **{"System.State": "Solution Proposed"})
    # the connector's first try landed, the reply was lost, its retry met the new version
    t["zendesk"].after_update.append(Conflict("conflict (HTTP 409)", tracker="zendesk", status=409))
    report = engine.run_cycle()
    assert report.conflicts == 1
    engine.run_cycle()
    assert escalation(engine, ticket_id).state is State.SOLUTION_PROPOSED
    assert not any("waiting_on_internal" in b for b in bodies(t["azure_devops"].records[item_id]))
    with engine.store.transaction() as tx:
        states = [a.state for a in engine.store.actions(tx) if a.kind == "update"
                  and a.connector == "zendesk"]
    assert "pending" not in states and "dead" not in states


def test_conflict_whose_reread_fails_keeps_the_action(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path, working=False)
    t["azure_devops"].edit(item_id, **{"System.State": "Actively Working"})
    t["zendesk"].edit(ticket_id, priority="urgent")  # a person edits first: the write conflicts
    t["zendesk"].get_fails.append(Retryable("HTTP 503"))
    engine.run_cycle()
    engine.run_cycle()
    data = t["zendesk"].records[ticket_id].data
    assert data["status"] == "hold" and data["priority"] == "urgent"
    assert pending(engine) == 0


# -- comments whose outcome tiersync never learned -------------------------------------------------
@pytest.mark.parametrize("failure", [Retryable("reply lost: connection dropped"), Killed()],
                         ids=["reply-lost", "killed-before-commit"])
def test_comment_that_landed_is_not_posted_again(tmp_path, failure):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    t["azure_devops"].edit(item_id, **{"System.State": "Waiting on Publisher"})
    t["zendesk"].after_comment.append(failure)
    cycle(engine)
    engine = restart(tmp_path, t, clock)
    engine.run_cycle()
    engine.run_cycle()
    notes = [b for b in bodies(t["zendesk"].records[ticket_id]) if "to waiting_on_customer" in b]
    assert len(notes) == 1, notes
    assert pending(engine) == 0


def test_comment_that_did_not_land_is_posted_once(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    t["azure_devops"].edit(item_id, **{"System.State": "Waiting on Publisher"})
    t["zendesk"].before_comment.append(Retryable("HTTP 503 before processing"))
    engine.run_cycle()
    engine.run_cycle()
    notes = [b for b in bodies(t["zendesk"].records[ticket_id]) if "to waiting_on_customer" in b]
    assert len(notes) == 1


def test_identical_comments_are_each_copied_once(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    zd = t["zendesk"]
    same = [RemoteComment(id=f"9{n}", body="Any news?", public=True, author="agent1",
                          created_at=clock.advance(minutes=1)) for n in range(2)]
    zd.put(dict(zd.records[ticket_id].data), remote_id=ticket_id, comments=same)
    t["azure_devops"].after_comment.append(Retryable("reply lost"))
    engine.run_cycle()
    engine.run_cycle()
    # each copied once, whether as two comments or as two parts of one (core/outbox_group.py)
    copies = sum(b.count("Any news?") for b in bodies(t["azure_devops"].records[item_id]))
    assert copies == 2


# -- a tracker change made just before tiersync comments on the record -----------------------------
def test_change_hidden_behind_own_comment_keeps_its_own_time(tmp_path):
    contact = "custom_fields.360010000017"
    engine, t, clock, ticket_id, item_id = started(tmp_path, **{contact: "Ana"})
    zd, ado = t["zendesk"], t["azure_devops"]
    start = ado.clock
    note = RemoteComment(id="901", body="Logs attached.", public=True, author="agent1",
                         created_at=start)
    zd.put(dict(zd.records[ticket_id].data), remote_id=ticket_id, comments=[note])

    def people_edit_both():  # after tiersync pulled, before it writes the copy on the item
        ado.clock = start + timedelta(minutes=20)
        ado.edit(item_id, **{"Custom.PartnerContactName": "Bea (edited in Azure DevOps)"})
        zd.clock = start + timedelta(minutes=30)
        zd.edit(ticket_id, **{contact: "Cem (edited later in Zendesk)"})
        ado.clock = start + timedelta(minutes=40)  # tiersync's comment comes after both

    ado.hook = people_edit_both
    engine.run_cycle()
    engine.run_cycle()
    engine.run_cycle()
    assert escalation(engine, ticket_id).contact_name == "Cem (edited later in Zendesk)"
    assert ado.records[item_id].data["Custom.PartnerContactName"] == "Cem (edited later in Zendesk)"
    assert zd.records[ticket_id].data[contact] == "Cem (edited later in Zendesk)"


# -- a mirror adopted after a crash ----------------------------------------------------------------
class DefaultsConnector(FaultyConnector):
    """Like Jira: a new record starts in the tracker's initial state, whatever was asked."""

    def create(self, fields, *, idempotency_key, origin=None):
        return super().create({**fields, "System.State": "New"}, idempotency_key=idempotency_key,
                              origin=origin)


def test_mirror_adopted_from_a_pull_does_not_move_the_escalation_back(tmp_path):
    clock = Clock()
    t = {"zendesk": FaultyConnector("zendesk"), "azure_devops": DefaultsConnector("azure_devops")}
    engine = engine_on(tmp_path, t, clock)
    ticket = t["zendesk"].put(partner_ticket(status="open"))  # open: waiting on internal
    real_create = t["azure_devops"].create

    def create_then_die(*args, **kwargs):
        real_create(*args, **kwargs)
        raise Killed()

    t["azure_devops"].create = create_then_die
    cycle(engine)
    t["azure_devops"].create = real_create
    engine = restart(tmp_path, t, clock)
    engine.run_cycle()  # the pull finds the item carrying the idempotency key and adopts it
    engine.run_cycle()
    assert escalation(engine, ticket.id).state is State.WAITING_ON_INTERNAL
    [item] = t["azure_devops"].records.values()
    assert item.data["System.State"] == "Waiting on Internal"  # written over the default
    assert not any("to new" in b for b in bodies(t["zendesk"].records[ticket.id]))


# -- periodic re-evaluation -------------------------------------------------------------------------
class CountingPolicy:
    def __init__(self, inner):
        self.inner = inner
        self.periodic = 0

    def decide(self, before, after, observation, now):
        if observation is None and before is after:
            self.periodic += 1
        return self.inner.decide(before, after, observation, now)


def test_unchanged_escalation_is_not_redecided_every_cycle(tmp_path):
    from tests.engine_helpers import RouteToTier2
    policy = CountingPolicy(RouteToTier2())
    clock = Clock()
    engine, t = make_engine(tmp_path / "s.db", clock=clock, policy=policy)
    ticket = t["zendesk"].put(partner_ticket())
    engine.run_cycle()
    engine.run_cycle()
    asked = policy.periodic
    engine.run_cycle()
    assert policy.periodic == asked  # unchanged and asked less than a minute ago
    clock.advance(seconds=engine.settings.reevaluate_seconds + 1)
    engine.run_cycle()
    assert policy.periodic == asked + 1  # asked again once the interval passed
    t["zendesk"].edit(ticket.id, priority="urgent")
    engine.run_cycle()
    assert policy.periodic == asked + 2  # and as soon as it changed


# -- a pull interrupted by a transient error ---------------------------------------------------------
class FlakyFeed(FaultyConnector):
    """Its change feed fails once after ``n`` pages, for each ``n`` in ``fail_after``."""

    def __init__(self, name: str, fail_after: list[int], error: Exception | None = None):
        super().__init__(name)
        self.config.page_size = 2
        self.fail_after = list(fail_after)
        self.error = error or Retryable("HTTP 502 in the middle of the pull")
        self.tries = 0

    def fetch_changes(self, cursor):
        self.tries += 1
        limit = self.fail_after.pop(0) if self.fail_after else None
        for number, page in enumerate(super().fetch_changes(cursor)):
            if number == limit:
                raise self.error
            yield page


def flaky_engine(tmp_path, feed: FlakyFeed):
    t = {"zendesk": feed, "azure_devops": FaultyConnector("azure_devops")}
    engine = engine_on(tmp_path, t, Clock())
    for n in range(5):  # three pages of escalated tickets
        feed.put(partner_ticket(subject=f"1234567890123{n} - Case {n}"))
    return engine


def test_pull_resumes_from_the_last_committed_page_within_the_cycle(tmp_path):
    feed = FlakyFeed("zendesk", fail_after=[1, 1, 0, 0])
    engine = flaky_engine(tmp_path, feed)
    report = engine.run_cycle()
    assert report.opened == 5 and report.connector_errors == []
    assert feed.tries == 5  # three tries made progress, two in a row did not (<= pull_retries)


def test_pull_gives_up_for_the_cycle_after_fruitless_retries_or_a_rate_limit(tmp_path):
    feed = FlakyFeed("zendesk", fail_after=[0, 0, 0, 0])
    engine = flaky_engine(tmp_path, feed)
    report = engine.run_cycle()
    assert report.opened == 0 and len(report.connector_errors) == 1
    assert feed.tries == engine.settings.pull_retries + 1
    from core.errors import RateLimited
    limited = FlakyFeed("zendesk", fail_after=[1], error=RateLimited("429", retry_after=30))
    (tmp_path / "limited").mkdir()
    engine = flaky_engine(tmp_path / "limited", limited)
    report = engine.run_cycle()
    assert report.opened == 2 and limited.tries == 1  # a rate limit is honoured, not retried
    assert engine.run_cycle().rate_limited == 1 and limited.tries == 1  # Retry-After still runs
    engine.clock.advance(seconds=30)
    assert engine.run_cycle().opened == 3  # then the next cycle goes on from the committed page
