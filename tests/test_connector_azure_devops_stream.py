"""What a pull costs on Azure DevOps, counted with the simulator's request recording over real
HTTP (issue 11, item 8): comments of a page from the reporting revisions stream where it proves
them complete, the comment list where it does not, and an idle pull of one WIQL query."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connectors.azure_devops_history import Ref, Rev, proven_comments
from simulators.azure_devops import AzureDevOpsSimulator
from tests.test_connector_azure_devops_contract import make_connector

READ_POSTS = ("/wiql", "/workitemsbatch")


def reads(sim) -> list[str]:
    """The read requests recorded since the last clear (route discovery left out)."""
    return [f"{r.method} {r.path}" for r in sim.requests
            if r.method == "GET" or (r.method == "POST" and r.path.endswith(READ_POSTS))]


def comment_reads(sim) -> list[str]:
    return [r for r in reads(sim) if r.startswith("GET") and r.endswith("/comments")]


def pull(sim, monkeypatch, cursor):
    """One pull from ``cursor`` by a fresh connector (a new process), every record completed:
    (records by id, the last cursor)."""
    return pull_from(sim, monkeypatch, cursor)


def pull_from(sim, monkeypatch, cursor, **overrides):
    connector = make_connector(sim, monkeypatch, **overrides)
    records = {}
    try:
        for page in connector.fetch_changes(cursor):
            records.update({r.id: r for r in connector.load_details(page.records)})
            cursor = page.cursor
    finally:
        connector.close()
    return records, cursor


def mirrors(sim, monkeypatch, count: int) -> tuple[list[str], str]:
    """``count`` items created by tiersync (with its marker), pulled once: (ids, cursor)."""
    connector = make_connector(sim, monkeypatch)
    _, cursor = pull(sim, monkeypatch, None)
    ids = [connector.create({"System.Title": f"{n} - stream test"},
                            idempotency_key=f"esc-stream-{n}-azure_devops").id for n in range(count)]
    connector.close()
    _, cursor = pull(sim, monkeypatch, cursor)
    return ids, cursor


def later(sim, seconds: float = 3.0) -> None:
    """Move the simulator's clock on, as time passing between two pulls."""
    clock = sim.store.clock
    sim.store.clock = lambda: clock() + timedelta(seconds=seconds)


@pytest.fixture
def sim():
    with AzureDevOpsSimulator() as simulator:
        yield simulator


def test_a_wave_of_new_comments_costs_a_few_reads_not_one_per_item(sim, monkeypatch):
    ids, cursor = mirrors(sim, monkeypatch, 60)
    for item in ids:
        sim.human_edit(item, {"System.State": "Actively Working",
                              "System.History": f"<p>Picked up {item} &amp; reproducing</p>"})
    sim.clear_requests()
    records, _ = pull(sim, monkeypatch, cursor)
    assert len(records) == 60 and not comment_reads(sim)
    assert len(reads(sim)) <= 60 / 20 + 2, reads(sim)  # WIQL, batch, states, the stream
    connector = make_connector(sim, monkeypatch)
    for item in (ids[0], ids[-1]):  # what the comment lists say, ids and all
        listed = connector.get(item).comments
        assert records[item].comments == listed and len(listed) == 1
    connector.close()
    assert [c.body for c in records[ids[0]].comments] == [f"Picked up {ids[0]} & reproducing"]


@pytest.mark.parametrize("refs", [False, True])
def test_two_new_comments_need_the_streams_comment_references(monkeypatch, refs):
    """The page's batch read names the comment of an item's latest revision; an earlier one is
    named only by a stream whose values carry ``commentVersionRef``, else its list is read."""
    with AzureDevOpsSimulator(reporting_comment_refs=refs) as sim:
        ids, cursor = mirrors(sim, monkeypatch, 3)
        for item in ids:
            sim.human_comment(item, f"note {item}")
        sim.human_comment(ids[0], "a second note")
        sim.clear_requests()
        records, _ = pull(sim, monkeypatch, cursor)
        assert comment_reads(sim) == ([] if refs else
                                      [f"GET /myorg/Support/_apis/wit/workItems/{ids[0]}/comments"])
        assert [c.body for c in records[ids[0]].comments] == [f"note {ids[0]}", "a second note"]
        assert all([c.body for c in records[i].comments] == [f"note {i}"] for i in ids[1:])


def test_an_idle_pull_is_one_wiql_query(sim, monkeypatch):
    ids, cursor = mirrors(sim, monkeypatch, 3)  # the cursor's boundary holds these items
    sim.clear_requests()
    records, after = pull(sim, monkeypatch, cursor)
    assert records == {} and reads(sim) == ["POST /myorg/Support/_apis/wit/wiql"]
    sim.human_edit(ids[1], {"System.Title": "1 - changed"})  # a boundary item's new revision
    records, _ = pull(sim, monkeypatch, after)
    assert list(records) == [ids[1]]


def test_the_echo_of_tiersyncs_own_comment_reads_no_comment_list(sim, monkeypatch):
    ids, cursor = mirrors(sim, monkeypatch, 2)
    connector = make_connector(sim, monkeypatch)
    posted = connector.add_comment(ids[0], "[tiersync] Zendesk: customer replied", public=False)
    connector.close()
    sim.clear_requests()
    records, _ = pull(sim, monkeypatch, cursor)
    assert not comment_reads(sim)
    assert [(c.id, c.body) for c in records[ids[0]].comments] == [
        (posted, "[tiersync] Zendesk: customer replied")]


def test_an_item_made_in_azure_devops_with_older_comments_reads_its_list(sim, monkeypatch):
    _, cursor = pull(sim, monkeypatch, None)
    origin = sim.human_create({"System.Title": "42 - made by a person"})
    sim.human_comment(origin, "an older note")
    _, cursor = pull(sim, monkeypatch, cursor)
    later(sim)  # another item's change moves the cursor past the older note's second
    sim.human_create({"System.Title": "44 - another"})
    _, cursor = pull(sim, monkeypatch, cursor)
    later(sim)
    sim.human_comment(origin, "a new note")
    sim.clear_requests()
    records, _ = pull(sim, monkeypatch, cursor)
    # an escalation it starts now needs the older comment too: only its list has it
    assert comment_reads(sim) == [f"GET /myorg/Support/_apis/wit/workItems/{origin}/comments"]
    assert [c.body for c in records[str(origin)].comments] == ["an older note", "a new note"]


def test_a_mirror_older_than_the_feeds_first_pull_reads_its_list(sim, monkeypatch):
    connector = make_connector(sim, monkeypatch)
    item = connector.create({"System.Title": "45 - an old mirror"}, idempotency_key="esc-old-azure_devops").id
    connector.add_comment(item, "before this store's first pull", public=False)
    connector.close()
    later(sim)
    start = sim.now_text()
    later(sim)
    records, cursor = pull_from(sim, monkeypatch, None, start_at=start)
    assert records == {}  # not changed since the feed's start: never read with its comments
    later(sim)
    sim.human_comment(item, "a new note")
    sim.clear_requests()
    records, _ = pull_from(sim, monkeypatch, cursor, start_at=start)
    assert comment_reads(sim) == [f"GET /myorg/Support/_apis/wit/workItems/{item}/comments"]
    assert [c.body for c in records[item].comments] == ["before this store's first pull", "a new note"]


def test_a_first_pull_without_a_cursor_reads_comment_lists(sim, monkeypatch):
    item = sim.human_create({"System.Title": "43 - made by a person"})
    sim.human_comment(item, "a note")
    sim.clear_requests()
    records, _ = pull(sim, monkeypatch, None)
    assert comment_reads(sim) == [f"GET /myorg/Support/_apis/wit/workItems/{item}/comments"]
    assert [c.body for c in records[str(item)].comments] == ["a note"]


# -- the proof, revision by revision ----------------------------------------------------------------
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def rev(number: int, count: int, comment: int | None = None, *, version: int = 1,
        history: str | None = "note", deleted: bool = False) -> Rev:
    return Rev(rev=number, count=count, changed=T0 + timedelta(seconds=number),
               by="tier2.agent@fabrikam.example", history=history,
               comment_id=comment, comment_version=version if comment else None,
               comment_deleted=deleted)


def revisions(*entries: Rev) -> dict[int, Rev]:
    return {e.rev: e for e in entries}


def test_the_proof_takes_added_comments_in_order():
    found = proven_comments(revisions(rev(4, 2, 70), rev(5, 2, history=None), rev(6, 3, 71)),
                            6, 3, known=True)
    assert [(c.id, c.body, c.created_at) for c in found] == [
        ("70", "note", T0 + timedelta(seconds=4)), ("71", "note", T0 + timedelta(seconds=6))]
    assert proven_comments(revisions(rev(4, 2, history=None)), 4, 2, known=True) == ()
    assert proven_comments(revisions(rev(4, 2, history=None)), 4, 2, known=False) is None


@pytest.mark.parametrize("window, rev_no, count, known", [
    (revisions(rev(4, 2, 70), rev(6, 3, 71)), 6, 3, True),  # a gap: revision 5 missing
    (revisions(rev(4, 2, 70, version=2)), 4, 2, True),  # an edited comment
    (revisions(rev(4, 1, 70, deleted=True)), 4, 1, True),  # a deleted comment
    (revisions(rev(4, 2, history="a History without a reference")), 4, 2, True),
    (revisions(rev(4, 2, 70), rev(5, 4, 71)), 5, 4, True),  # two comments in one revision
    (revisions(rev(4, 2, 70)), 4, 3, True),  # the page's count is not the stream's
    (revisions(rev(4, 2, 70)), 4, 2, False),  # older comments of an item tiersync did not make
    (revisions(rev(1, 2, 70)), 1, 2, True),  # a first revision cannot have had comments before
    (revisions(), 4, 2, True),  # nothing in the stream for the item
])
def test_the_proof_refuses_what_it_cannot_account_for(window, rev_no, count, known):
    assert proven_comments(window, rev_no, count, known=known) is None


def test_the_batch_reads_reference_names_the_latest_revisions_comment():
    latest = revisions(rev(4, 1, history=None), rev(5, 2, history="<b>new</b>"))
    found = proven_comments(latest, 5, 2, known=True, last_ref=Ref(80, 1))
    assert [(c.id, c.body) for c in found] == [("80", "new")]
    assert proven_comments(latest, 5, 2, known=True, last_ref=Ref(80, 2)) is None  # an edit
    earlier = revisions(rev(4, 1, history="older"), rev(5, 2, history="new"))
    assert proven_comments(earlier, 5, 2, known=True, last_ref=Ref(80, 1)) is None


def test_revisions_the_cursor_delivered_are_skipped():
    stream = revisions(rev(3, 1, history="delivered before"), rev(4, 2, 70))
    assert [c.id for c in proven_comments(stream, 4, 2, known=True, delivered=3)] == ["70"]
    assert proven_comments(revisions(rev(5, 2, 70)), 5, 2, known=True, delivered=3) is None


def test_the_proof_needs_no_earlier_delivery_when_the_count_started_at_zero():
    found = proven_comments(revisions(rev(4, 1, 70)), 4, 1, known=False)
    assert [c.id for c in found] == ["70"]
