"""The comments queued for one record go out as one comment (core/outbox_group.py; issue 11
item 8), and no part of one is ever posted twice: after a lost reply, a process killed between
the send and its record, or a lost store whose tracker holds the parts one by one or joined
differently.

The engine cases run on the in-memory tracker with the fault hooks of tests/test_engine_faults.py;
the wire (one Zendesk write per changed ticket, one Jira comment per changed issue) is counted on
the simulators over real HTTP in tests/test_outbox_group_e2e.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from core.connector import RemoteComment
from core.errors import Retryable
from core.outbox_group import MAX_CHARS, SEPARATOR, occurrences
from core.planner import comment_copy_body
from tests.test_engine_faults import Killed, bodies, cycle, pending, restart, started

A, B, C, D = ("Logs attached.", "The tenant is EU.", "Customer confirms 403.", "Anything new?")


def copy(text: str) -> str:
    return comment_copy_body("agent1", "zendesk", text)


def comment_in_zendesk(t, clock, ticket_id: str, *texts: str) -> None:
    zd = t["zendesk"]
    record = zd.records[ticket_id]
    new = [RemoteComment(id=f"z{len(record.comments) + n}", body=text, public=True, author="agent1",
                         created_at=clock.advance(minutes=1)) for n, text in enumerate(texts)]
    zd.put(dict(record.data), remote_id=ticket_id, comments=list(record.comments) + new)


def count(record, text: str) -> int:
    """How many times ``text``'s copy stands on the record, alone or as a part."""
    return sum(occurrences(body, copy(text)) for body in bodies(record))


def comment_rows(engine, connector: str = "azure_devops") -> list:
    with engine.store.transaction() as tx:
        return [a for a in engine.store.actions(tx) if a.kind == "comment" and a.connector == connector]


def lose_store(tmp_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 's.db'}{suffix}").unlink(missing_ok=True)


# -- finding a part ---------------------------------------------------------------------------------
def test_a_part_is_found_alone_or_as_a_run_of_a_joined_comment_and_counted():
    a, b = copy(A), copy("line one\n\n----\n\nline two")  # a person's text may hold a rule
    joined = SEPARATOR.join([a, b, a])
    assert occurrences(a, a) == 1
    assert occurrences(joined, a) == 2  # two identical parts are two
    assert occurrences(joined, b) == 1  # a part holding a rule is still one part
    assert occurrences(joined, SEPARATOR.join([b, a])) == 1
    assert occurrences(" \n".join(a.split(" ")), a) == 1  # whatever whitespace the tracker changed
    assert occurrences(joined, copy("line one")) == 0  # a rule inside a part is no boundary
    assert occurrences(joined, copy("Logs")) == 0


def test_a_persons_comment_that_quotes_a_part_is_not_that_part():
    part = copy(A)
    assert occurrences(f"As tiersync said: {part}", part) == 0
    assert occurrences(f"{part}\n\nand more from me", part) == 0


# -- one comment, one row per part --------------------------------------------------------------------
def test_comments_queued_together_go_as_one_comment_each_row_done_and_audited(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    ado = t["azure_devops"]
    before = len(bodies(ado.records[item_id]))
    writes = len([c for c in ado.calls if c[0] == "comment"])
    comment_in_zendesk(t, clock, ticket_id, A, B)
    engine.run_cycle()
    new = bodies(ado.records[item_id])[before:]
    assert new == [SEPARATOR.join([copy(A), copy(B)])]  # in the order they were queued
    assert len([c for c in ado.calls if c[0] == "comment"]) == writes + 1
    [comment_id] = [c.id for c in ado.records[item_id].comments[before:]]
    rows = [a for a in comment_rows(engine) if a.payload["body"] in (copy(A), copy(B))]
    assert [(a.state, a.result["comment_id"]) for a in rows] == [("done", comment_id)] * 2
    with engine.store.transaction() as tx:
        audited = [e["after"]["body"] for e in engine.audit.query(
            tx, escalation_id=rows[0].escalation_id, tracker="azure_devops", action="commented")]
    assert audited[-2:] == [copy(A), copy(B)]  # each part its own entry
    assert pending(engine) == 0


def test_a_long_run_of_comments_goes_as_several_none_above_the_limit(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    ado = t["azure_devops"]
    before = len(bodies(ado.records[item_id]))
    texts = [f"{n}: " + "x" * 3000 for n in range(12)]
    comment_in_zendesk(t, clock, ticket_id, *texts)
    engine.run_cycle()
    engine.run_cycle()
    new = bodies(ado.records[item_id])[before:]
    assert 1 < len(new) < len(texts) and all(len(b) <= MAX_CHARS for b in new)
    assert all(count(ado.records[item_id], text) == 1 for text in texts)


# -- a joined comment whose outcome tiersync never learned -------------------------------------------
@pytest.mark.parametrize("failure", [Retryable("reply lost: connection dropped"), Killed()],
                         ids=["reply-lost", "killed-between-send-and-record"])
def test_a_joined_comment_that_landed_is_not_posted_again_nor_any_part(tmp_path, failure):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    ado = t["azure_devops"]
    comment_in_zendesk(t, clock, ticket_id, A, B)
    ado.after_comment.append(failure)
    cycle(engine)
    assert count(ado.records[item_id], A) == count(ado.records[item_id], B) == 1  # it landed
    comment_in_zendesk(t, clock, ticket_id, C)  # the next attempt's group differs
    engine = restart(tmp_path, t, clock)
    engine.run_cycle()
    engine.run_cycle()
    assert [count(ado.records[item_id], text) for text in (A, B, C)] == [1, 1, 1], \
        bodies(ado.records[item_id])
    assert pending(engine) == 0


def test_a_joined_comment_that_did_not_land_is_posted_once(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    ado = t["azure_devops"]
    comment_in_zendesk(t, clock, ticket_id, A, B)
    ado.before_comment.append(Retryable("HTTP 503 before processing"))
    engine.run_cycle()
    engine.run_cycle()
    assert [count(ado.records[item_id], text) for text in (A, B)] == [1, 1]
    assert pending(engine) == 0


# -- a lost store ------------------------------------------------------------------------------------
def test_a_lost_store_finds_parts_posted_one_by_one_and_joined_and_posts_none_again(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    ado = t["azure_devops"]
    comment_in_zendesk(t, clock, ticket_id, A)
    engine.run_cycle()  # A alone
    comment_in_zendesk(t, clock, ticket_id, B, C)
    engine.run_cycle()  # B and C joined
    kept = bodies(ado.records[item_id])
    assert copy(A) in kept and SEPARATOR.join([copy(B), copy(C)]) in kept
    lose_store(tmp_path)
    engine = restart(tmp_path, t, clock)  # a new store re-queues A, B and C, joinable as one
    for _ in range(3):
        engine.run_cycle()
    assert bodies(ado.records[item_id]) == kept
    assert pending(engine) == 0


def test_a_lost_store_sends_only_the_parts_not_on_the_record(tmp_path):
    engine, t, clock, ticket_id, item_id = started(tmp_path)
    ado = t["azure_devops"]
    comment_in_zendesk(t, clock, ticket_id, A, B, A)  # A twice: each copied once
    engine.run_cycle()
    kept = bodies(ado.records[item_id])
    lose_store(tmp_path)
    comment_in_zendesk(t, clock, ticket_id, D)  # made while the store was gone
    engine = restart(tmp_path, t, clock)
    for _ in range(3):
        engine.run_cycle()
    now = bodies(ado.records[item_id])
    assert now[:len(kept)] == kept and now[len(kept):] == [copy(D)]
    assert [count(ado.records[item_id], text) for text in (A, B, D)] == [2, 1, 1]
    assert pending(engine) == 0


def test_the_lookup_of_what_joins_a_comment_is_planned_on_an_index(tmp_path):
    from datetime import datetime, timezone

    from core.store import Store
    from tests.explain import select_plans
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    store = Store(f"sqlite:///{tmp_path / 'plans.db'}")
    store.migrate()
    with store.transaction() as tx:
        for n in range(20):
            store.enqueue(tx, escalation_id=f"esc-{n}", connector="jira", kind="comment",
                          payload={"body": "x"}, now=now, dedupe_key=f"note:esc-{n}:jira:x")
    plans = [" | ".join(lines) for _, lines in
             select_plans(store, lambda tx: store.pending_after(tx, "esc-3", "jira", 0))]
    store.close()
    assert plans and all("SEARCH outbox USING" in p and "SCAN outbox" not in p for p in plans), plans


def test_a_comment_that_notifies_people_goes_on_its_own_with_its_mentions(tmp_path):
    from tests.engine_helpers import make_engine, partner_ticket
    from tests.test_engine_faults import escalation
    engine, t = make_engine(tmp_path / "s.db")  # the memory tracker records whom it notified
    ticket_id = t["zendesk"].put(partner_ticket()).id
    engine.run_cycle()
    ado = t["azure_devops"]
    item_id = next(iter(ado.records))
    before = len(bodies(ado.records[item_id]))
    esc = escalation(engine, ticket_id).id
    notes = [("[tiersync] first", ()), ("[tiersync] escalated", ("lead@tier2.example",)),
             ("[tiersync] third", ()), ("[tiersync] fourth", ())]
    with engine.store.transaction() as tx:
        for n, (body, notify) in enumerate(notes):
            engine.planner._enqueue_comment(tx, esc, "azure_devops", body, False, f"note:{esc}:t{n}",
                                            "test", engine.clock(), notify)
    engine.run_cycle()
    assert bodies(ado.records[item_id])[before:] == [
        "[tiersync] first", "[tiersync] escalated", SEPARATOR.join(["[tiersync] third",
                                                                    "[tiersync] fourth"])]
    assert [c for c in ado.calls if c[0] == "notify"] == [
        ("notify", item_id, ("lead@tier2.example",))]
    assert pending(engine) == 0
