"""Rows batched at a transaction's commit: audit entries, queued comments (issue 11 items 1, 4)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import event, func, insert, select

from core import schema as t
from core.audit import AuditEntry, AuditLog
from core.audit_chain import read_head, verify_chain
from core.outbox_queue import queue_comment
from core.store import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'batch.db'}")
    s.migrate()
    yield s
    s.close()


def entry(n: int) -> AuditEntry:
    return AuditEntry(run_id="run-1", at=NOW, action="merged", escalation_id=f"esc-{n}",
                      tracker="zendesk", remote_id=str(n), after={"n": n})


def test_a_transactions_entries_are_one_insert_and_the_chain_verifies(store):
    log = AuditLog(key=None)
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda *args: seen.append(args[2]))
    with store.transaction() as tx:
        digests = [log.append(tx, entry(n)) for n in range(50)]
    audit_statements = [s for s in seen if " audit" in s]
    # the head read, one INSERT of all 50, the newest seq read back, the head update
    assert len(audit_statements) == 4, audit_statements
    assert len([s for s in audit_statements if s.startswith("INSERT")]) == 1
    with store.transaction() as tx:
        head = read_head(tx)
        hashes = tx.execute(select(t.audit.c.hash).order_by(t.audit.c.seq)).scalars().all()
        assert verify_chain(tx, None).problems == []
    assert hashes == digests and head.count == 50 and head.head == digests[-1]


def test_a_savepoint_rolled_back_takes_its_entries_and_comments_with_it(store):
    log = AuditLog(key=None)
    with store.transaction() as tx:
        log.append(tx, entry(1))
        with pytest.raises(RuntimeError):
            with tx.begin_nested():
                log.append(tx, entry(2))
                queue_comment(tx, escalation_id="esc-2", connector="jira", payload={"body": "x"},
                              dedupe_key="note:esc-2:jira:x", rule="r", now=NOW)
                raise RuntimeError("this record fails")
        with tx.begin_nested():  # a savepoint before the transaction's first comment
            queue_comment(tx, escalation_id="esc-3", connector="jira", payload={"body": "y"},
                          dedupe_key="note:esc-3:jira:y", rule="r", now=NOW)
        log.append(tx, entry(3))
    with store.transaction() as tx:
        remote_ids = tx.execute(select(t.audit.c.remote_id).order_by(t.audit.c.seq)).scalars().all()
        keys = tx.execute(select(t.outbox.c.dedupe_key)).scalars().all()
        assert verify_chain(tx, None).problems == []
    assert remote_ids == ["1", "3"] and keys == ["note:esc-3:jira:y"]


def test_a_comment_queued_before_or_pruned_is_not_queued_again(store):
    with store.transaction() as tx:
        tx.execute(insert(t.done_keys).values(dedupe_key="note:esc-1:jira:old", done_at=NOW))
        store.enqueue(tx, escalation_id="esc-1", connector="jira", kind="comment",
                      payload={"body": "a"}, now=NOW, dedupe_key="note:esc-1:jira:a")
    with store.transaction() as tx:
        for key in ("note:esc-1:jira:old", "note:esc-1:jira:a", "note:esc-1:jira:b",
                    "note:esc-1:jira:b"):
            queue_comment(tx, escalation_id="esc-1", connector="jira", payload={"body": key},
                          dedupe_key=key, rule="r", now=NOW)
    with store.transaction() as tx:
        rows = tx.execute(select(t.outbox.c.dedupe_key, func.count()).group_by(
            t.outbox.c.dedupe_key).order_by(t.outbox.c.dedupe_key)).all()
    assert [tuple(r) for r in rows] == [("note:esc-1:jira:a", 1), ("note:esc-1:jira:b", 1)]


def test_a_dry_run_store_writes_the_buffers_at_the_end_of_each_transaction(tmp_path):
    real = Store(f"sqlite:///{tmp_path / 'dry.db'}")
    real.migrate()
    real.close()
    dry = Store(f"sqlite:///{tmp_path / 'dry.db'}", dry_run=True)
    with dry.transaction() as tx:
        AuditLog(key=None).append(tx, entry(1))
    with dry.transaction() as tx:
        assert tx.execute(select(func.count()).select_from(t.audit)).scalar() == 1
    dry.close()
    check = Store(f"sqlite:///{tmp_path / 'dry.db'}")
    with check.transaction() as tx:  # rolled back with the dry run
        assert tx.execute(select(func.count()).select_from(t.audit)).scalar() == 0
    check.close()


def test_a_scope_that_raises_takes_back_its_rows_without_a_savepoint(store):
    from core import tx_buffer
    log = AuditLog(key=None)
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    with store.transaction() as tx:
        log.append(tx, entry(1))
        with pytest.raises(RuntimeError):
            with tx_buffer.scope(tx):
                log.append(tx, entry(2))
                queue_comment(tx, escalation_id="esc-2", connector="jira", payload={"body": "x"},
                              dedupe_key="comment:esc-2", rule="sync.comments", now=NOW)
                raise RuntimeError("the record failed")
        with tx_buffer.scope(tx):
            log.append(tx, entry(3))
    assert not [s for s in seen if "SAVEPOINT" in s]
    with store.transaction() as tx:
        ids = tx.execute(select(t.audit.c.escalation_id).order_by(t.audit.c.seq)).scalars().all()
        assert ids == ["esc-1", "esc-3"]
        assert tx.execute(select(func.count()).select_from(t.outbox)).scalar() == 0
        assert verify_chain(tx, None).problems == []
