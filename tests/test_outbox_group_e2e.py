"""The comments a change queues for one record as one comment, on the wire (core/outbox_group.py;
issue 11 item 8), over the real connectors and the simulators, counted with the simulators'
request recording: the wave's change with its two notes is one Zendesk write per ticket (its
update carries both) and one Jira comment per issue (edit, transition, comment), and neither a
lost reply nor a lost store posts any part of it twice."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.request_counts import seed, until_quiet, wave
from core.outbox_group import SEPARATOR, occurrences
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e
NOTE = "Picked up by tier 2; reproducing."  # the wave's comment in Azure DevOps
STATE = "to actively_working"  # the state-change note's words


def _quiet(box: Sandbox, cycles: int = 8) -> None:
    if until_quiet(box, cycles + 1) > cycles:  # one more than allowed: not quiet in time
        raise AssertionError("the sandbox did not settle")


def _synced_then_wave(box: Sandbox, count: int) -> None:
    seed(box, count)
    _quiet(box)
    box.settle()
    box.clear_requests()
    wave(box, count)


def _requests(box: Sandbox, tracker: str) -> list:
    sim = box.sims[tracker]
    with sim.lock:
        return list(sim.requests)


def _comments(box: Sandbox) -> dict[tuple[str, str], list[str]]:
    """The comment texts of every ticket and issue."""
    snap = box.snapshot()
    out = {("zendesk", str(t["id"])): [c["body"] for c in t["comments"]]
           for t in snap["zendesk"]["tickets"]}
    out.update({("jira", str(i["key"])): [c["body"] for c in i["comments"]]
                for i in snap["jira"]["issues"]})
    return out


def _parts(texts: list[str]) -> Counter:
    """How often each tiersync part stands on a record (alone or in a joined comment)."""
    found: Counter = Counter()
    for text in texts:
        for part in text.split(SEPARATOR):
            found[" ".join(part.split())] += occurrences(text, part)
    return found


def _lose_store(box: Sandbox) -> None:
    box.stop_store()
    path = Path(box.store_url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _each_part_once(box: Sandbox) -> None:
    for record, texts in _comments(box).items():
        parts = _parts(texts)
        assert not [p for p, n in parts.items() if n > 1], (record, texts)
        if any(NOTE in t for t in texts):
            assert sum(n for p, n in parts.items() if NOTE in p) == 1, (record, texts)


@pytest.mark.parametrize("batch", [100, 2], ids=["one-claimed-batch", "batches-end-mid-record"])
def test_a_wave_change_with_two_notes_is_one_zendesk_write_and_one_jira_comment(tmp_path, batch):
    # with batches of 2, a claimed batch ends between a record's update and its comments
    with Sandbox(tmp_path, engine={"outbox_batch": batch}) as box:
        _synced_then_wave(box, 3)
        _quiet(box)
        writes = [e for e in _requests(box, "zendesk") if e.method != "GET"]
        assert Counter(e.path for e in writes) == Counter(
            {f"/api/v2/tickets/{n}.json": 1 for n in range(2, 5)}), [e.path for e in writes]
        for put in writes:  # the status and both notes, version-checked, in one PUT
            ticket = put.body["ticket"]
            body = ticket["comment"]["body"]
            assert ticket["status"] == "hold" and ticket["safe_update"] and ticket["updated_stamp"]
            assert body.index(STATE) < body.index(SEPARATOR) < body.index(NOTE), body
        jira = [e for e in _requests(box, "jira") if e.method not in ("GET",)  # writes only:
                and "/search" not in e.path and not e.path.endswith("/bulkfetch")]  # POST reads out
        per_issue = Counter(e.path.split("/")[5] for e in jira)
        assert len(per_issue) == 3 and max(per_issue.values()) <= 3, [e.path for e in jira]
        comments = [e for e in jira if e.path.endswith("/comment")]
        assert len(comments) == 3 and all(STATE in e.body["body"] and NOTE in e.body["body"]
                                          for e in comments)
        _each_part_once(box)


def test_a_lost_reply_of_the_joined_writes_posts_no_part_twice(tmp_path):
    with Sandbox(tmp_path) as box:
        _synced_then_wave(box, 2)
        box.sims["zendesk"].set_faults(fail_next=[{"path": r"/api/v2/tickets/\d+\.json$",
                                                   "method": "PUT", "count": 2, "lose_reply": True}])
        box.sims["jira"].set_faults(fail_next=[{"path": r"/issue/[^/]+/comment$", "method": "POST",
                                                "count": 2, "lose_reply": True}])
        _quiet(box)
        for tracker in ("zendesk", "jira"):  # a joined write landed, its reply lost
            assert [e for e in _requests(box, tracker) if e.reply_lost and e.status < 300]
        snap = box.snapshot()
        assert {t["status"] for t in snap["zendesk"]["tickets"] if t["id"] in (2, 3)} == {"hold"}
        _each_part_once(box)
        for record, texts in _comments(box).items():
            if record in (("zendesk", "2"), ("zendesk", "3")):
                assert sum(NOTE in t for t in texts) == 1, texts  # and none lost


def test_a_store_lost_after_joined_comments_posts_no_part_again(tmp_path):
    with Sandbox(tmp_path) as box:
        _synced_then_wave(box, 2)
        _quiet(box)
        before = _comments(box)
        assert [k for k, texts in before.items() if any(SEPARATOR in t for t in texts)]
        _lose_store(box)
        box.clear_requests()
        _quiet(box)
        assert _comments(box) == before, "a comment was posted again"
        _each_part_once(box)
