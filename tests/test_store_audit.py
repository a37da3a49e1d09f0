from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text, update

from core import schema
from core.audit import AuditEntry, AuditLog, write_jsonl
from core.audit_chain import verify_chain
from core.model import Escalation
from core.store import LinkRow, Store, StoreConflict

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 't.db'}")
    s.migrate()
    yield s
    s.close()


def test_migrations_are_ordered_and_applied_once(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'm.db'}")
    assert s.schema_version() == 0
    applied = s.migrate()
    assert [a.split(":")[0] for a in applied] == [str(n) for n, _, _ in schema.MIGRATIONS]
    assert s.schema_version() == schema.LATEST
    assert s.migrate() == []


def test_datetimes_come_back_aware_utc(store):
    esc = Escalation(created_at=NOW, updated_at=NOW)
    with store.transaction() as tx:
        store.save_escalation(tx, esc, {}, by="zendesk", run_id="r", previous_version=None)
        again = store.get_escalation(tx, esc.id).escalation
    assert again.created_at == NOW and again.created_at.tzinfo is not None


def test_saving_against_a_stale_version_is_refused(store):
    esc = Escalation()
    with store.transaction() as tx:
        store.save_escalation(tx, esc, {}, by="t", run_id="r", previous_version=None)
    newer = esc.bumped("t", NOW)
    with store.transaction() as tx:
        store.save_escalation(tx, newer, {}, by="t", run_id="r", previous_version=1)
    with pytest.raises(StoreConflict):
        with store.transaction() as tx:
            store.save_escalation(tx, newer.bumped("t", NOW), {}, by="t", run_id="r", previous_version=1)
    with store.transaction() as tx:
        assert [h["version"] for h in store.history_of(tx, esc.id)] == [1, 2]


def test_cursor_position_only_grows(store):
    with store.transaction() as tx:
        store.set_cursor(tx, "zendesk", "records", "a", NOW)
        store.set_cursor(tx, "zendesk", "records", "b", NOW)
        [row] = store.cursors(tx)
    assert row["cursor"] == "b" and row["position"] == 2


def test_outbox_dedupe_key_queues_once(store):
    with store.transaction() as tx:
        first = store.enqueue(tx, escalation_id="e", connector="jira", kind="create", payload={},
                              now=NOW, dedupe_key="tiersync:e:jira")
        second = store.enqueue(tx, escalation_id="e", connector="jira", kind="create", payload={},
                               now=NOW, dedupe_key="tiersync:e:jira")
        assert first is not None and second is None
        assert len(store.due_actions(tx, NOW)) == 1
        assert store.due_actions(tx, NOW - timedelta(seconds=1)) == []


def test_rolled_back_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            store.set_cursor(tx, "jira", "records", "x", NOW)
            raise RuntimeError("crash mid-page")
    with store.transaction() as tx:
        assert store.get_cursor(tx, "jira") is None


def test_audit_chain_detects_edits_and_removals(store, tmp_path):
    log = AuditLog()
    with store.transaction() as tx:
        for i in range(3):
            log.append(tx, AuditEntry(run_id="r", at=NOW, action="merged", tracker="zendesk",
                                      remote_id=str(i), before={"state": "new"},
                                      after={"note": "root password: hunter2"}))
        assert verify_chain(tx, log.key).problems == []
        rows = list(log.query(tx, remote_id="1"))
    assert len(rows) == 1 and "hunter2" not in str(rows[0]["after"])
    with open(tmp_path / "a.jsonl", "w") as fh:
        with store.transaction() as tx:
            assert write_jsonl(log.query(tx), fh) == 3
    with store.transaction() as tx:
        tx.execute(update(schema.audit).where(schema.audit.c.seq == 2).values(result="edited"))
        assert any("entry 2" in p and "edited" in p for p in verify_chain(tx, log.key).problems)
        tx.execute(text("DELETE FROM audit WHERE seq = 2"))
        assert any("entry 3" in p for p in verify_chain(tx, log.key).problems)


def test_links_round_trip(store):
    esc = Escalation()
    with store.transaction() as tx:
        store.save_escalation(tx, esc, {}, by="t", run_id="r", previous_version=None)
        link = LinkRow(tracker="jira", remote_id="ENG-1", escalation_id=esc.id, role="mirror",
                       last_version="v1", last_data={"summary": "x"}, seen_comments=["1"])
        store.save_link(tx, link, NOW)
        link.last_version = "v2"
        store.save_link(tx, link, NOW)
        got = store.links_for(tx, "jira", ["ENG-1", "ENG-2"])
    assert list(got) == ["ENG-1"] and got["ENG-1"].last_version == "v2"
    assert got["ENG-1"].last_data == {"summary": "x"}
