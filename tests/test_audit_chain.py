"""The tamper-evident audit chain: head, key, checkpoints, pruning (issue 13, item 3)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update
from typer.testing import CliRunner

from core import schema as t
from core.audit import GENESIS, AuditEntry, AuditKeyMissing, AuditLog, _chain, _content
from core.audit_chain import (load_checkpoint, make_checkpoint, parse_expect_head, prune_bound,
                              prune_checkpoint, prune_through, read_head, verify_chain)
from core.audit_schema import audit_chain
from core.store import Store
from sync import app
from tests.test_cli import write_config

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
KEY = b"auditors-only-key"


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'chain.db'}")
    s.migrate()
    yield s
    s.close()


def fill(store: Store, log: AuditLog, count: int, start: int = 0) -> None:
    with store.transaction() as tx:
        for n in range(start, start + count):
            log.append(tx, AuditEntry(run_id=f"run-{n // 3}", at=T0 + timedelta(hours=n),
                                      action="merged", escalation_id=f"esc-{n % 4}",
                                      tracker="zendesk", remote_id=str(n), rule="mapping",
                                      after={"severity": n}))


def problems(store: Store, key: bytes | None = None, expectations=()) -> list[str]:
    with store.transaction() as tx:
        return verify_chain(tx, key, list(expectations)).problems


def test_an_intact_chain_verifies_and_its_head_is_recorded(store):
    fill(store, AuditLog(key=None), 5)
    with store.transaction() as tx:
        head = read_head(tx)
        last = tx.execute(select(t.audit.c.hash).order_by(t.audit.c.seq.desc())).scalar()
    assert head.count == 5 and head.head == last and head.keyed_from is None
    assert problems(store) == []


def test_deleting_the_last_entries_is_caught(store):
    fill(store, AuditLog(key=None), 6)
    with store.transaction() as tx:
        tx.execute(delete(t.audit).where(t.audit.c.seq > 3))
    found = problems(store)
    assert any("holds 3 entries but its head records 6" in p for p in found)
    assert any("not the recorded head" in p for p in found)


def test_cutting_the_log_and_its_head_is_caught_by_the_expected_head(store):
    fill(store, AuditLog(key=None), 6)
    with store.transaction() as tx:
        kept = read_head(tx)
    fill(store, AuditLog(key=None), 2, start=6)
    with store.transaction() as tx:  # an intruder cuts the last 2 and rewrites the head to match
        tx.execute(delete(t.audit).where(t.audit.c.seq > 6))
        tx.execute(update(audit_chain).values(count=6, last_seq=6, head=kept.head))
    assert problems(store) == []  # nothing inside the store shows it...
    expected = parse_expect_head(f"8:{'a' * 64}")
    assert any("the log was cut" in p for p in problems(store, expectations=[expected]))


def test_an_edited_entry_is_caught(store):
    fill(store, AuditLog(key=None), 4)
    with store.transaction() as tx:
        tx.execute(update(t.audit).where(t.audit.c.seq == 2).values(result="tampered"))
    assert problems(store) == ["audit entry 2: content does not match its hash (unkeyed SHA-256) "
                               "(the entry was edited, or rewritten without the key)"]


def test_reordered_entries_are_caught(store):
    fill(store, AuditLog(key=None), 4)
    with store.transaction() as tx:
        rows = {r.seq: dict(r._mapping) for r in tx.execute(select(t.audit))}
        for seq, other in ((2, 3), (3, 2)):
            values = {k: v for k, v in rows[other].items() if k != "seq"}
            tx.execute(update(t.audit).where(t.audit.c.seq == seq).values(**values))
    assert any("previous-hash link broken" in p for p in problems(store))


def _rewrite_without_key(store: Store) -> None:
    """What an intruder with write access but no key can do: rewrite every hash consistently."""
    with store.transaction() as tx:
        prev = GENESIS
        for row in tx.execute(select(t.audit).order_by(t.audit.c.seq)).all():
            data = dict(row._mapping, result="rewritten")
            digest = _chain(prev, _content(data))
            tx.execute(update(t.audit).where(t.audit.c.seq == row.seq).values(
                result="rewritten", prev_hash=prev, hash=digest))
            prev = digest
        tx.execute(update(audit_chain).values(head=prev, keyed_from=None))


def test_a_keyless_rewrite_of_a_keyed_chain_is_caught_with_the_key(store):
    fill(store, AuditLog(key=KEY), 4)
    assert problems(store, KEY) == []
    _rewrite_without_key(store)
    with store.transaction() as tx:
        tx.execute(update(audit_chain).values(keyed_from=1))  # pretend it is still keyed
    found = problems(store, KEY)
    assert len(found) == 4 and all("with TIERSYNC_AUDIT_KEY" in p for p in found)


def test_a_keyless_rewrite_is_caught_by_a_signed_checkpoint(store):
    fill(store, AuditLog(key=KEY), 4)
    with store.transaction() as tx:
        cp = make_checkpoint(read_head(tx), KEY, T0)
    _rewrite_without_key(store)  # claims the chain was never keyed
    expectation, bad = load_checkpoint(json.dumps(cp), "cp.json", KEY)
    assert bad == []
    assert any("cp.json: entry 4 has hash" in p for p in problems(store, KEY, [expectation]))


def test_a_forged_checkpoint_fails_its_signature(store):
    fill(store, AuditLog(key=KEY), 2)
    with store.transaction() as tx:
        cp = make_checkpoint(read_head(tx), KEY, T0)
    cp["count"] = 1
    _, bad = load_checkpoint(json.dumps(cp), "cp.json", KEY)
    assert bad == ["cp.json: the checkpoint's signature does not match (edited, or another key)"]
    _, bad = load_checkpoint(json.dumps(cp), "cp.json", b"another key")
    assert bad and "signature does not match" in bad[0]


def test_an_unkeyed_chain_continues_keyed_and_both_parts_verify(store):
    fill(store, AuditLog(key=None), 3)
    fill(store, AuditLog(key=KEY), 3, start=3)
    with store.transaction() as tx:
        assert read_head(tx).keyed_from == 4
    assert problems(store, KEY) == []
    assert problems(store, None) == ["audit entries from 4 on are keyed: set TIERSYNC_AUDIT_KEY "
                                     "to verify their content"]
    with pytest.raises(AuditKeyMissing, match="keyed since entry 4"):
        fill(store, AuditLog(key=None), 1, start=6)


def test_pruning_keeps_the_rest_verifiable_from_the_prune_checkpoint(store):
    log = AuditLog(key=KEY)
    fill(store, log, 10)
    with store.transaction() as tx:
        old = make_checkpoint(read_head(tx), KEY, T0)
        through = prune_bound(tx, T0 + timedelta(hours=4))
        pruned = prune_through(tx, log, through, T0 + timedelta(hours=4), "prune-1", T0)
        at_prune = prune_checkpoint(pruned.head, KEY, T0)
    assert (through, pruned.removed) == (4, 4)
    assert pruned.head.count == 11 and pruned.head.pruned_count == 4  # the prune is logged too
    for cp in (old, at_prune):
        expectation, bad = load_checkpoint(json.dumps(cp), "cp", KEY)
        assert bad == [] and problems(store, KEY, [expectation]) == []
    with store.transaction() as tx:  # removing more than the prune recorded is still caught
        tx.execute(delete(t.audit).where(t.audit.c.seq == 5))
    assert any("previous-hash link broken" in p for p in problems(store, KEY))


def test_the_cli_reports_a_cut_log_and_verifies_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERSYNC_AUDIT_KEY", KEY.decode())
    config = str(write_config(tmp_path))
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    fill(store, AuditLog(), 6)
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "--verify", "--config", config])
    assert result.exit_code == 0 and "head 6:" in result.output and "keyed from entry 1" in result.output
    cp = tmp_path / "cp.json"
    result = runner.invoke(app, ["audit", "checkpoint", "--out", str(cp), "--config", config])
    assert result.exit_code == 0 and json.loads(cp.read_text())["signature"].startswith("hmac-sha256:")
    with store.transaction() as tx:
        tx.execute(delete(t.audit).where(t.audit.c.seq > 3))
        tx.execute(text("UPDATE audit_chain SET count = 3, last_seq = 3, "
                        "head = (SELECT hash FROM audit WHERE seq = 3)"))
    store.close()
    assert runner.invoke(app, ["audit", "--verify", "--config", config]).exit_code == 0
    result = runner.invoke(app, ["audit", "--verify", "--checkpoint", str(cp), "--config", config])
    assert result.exit_code == 1 and "before entry 6 it held (the log was cut)" in result.output


def test_the_cli_prunes_exports_and_verifies_from_the_prune_checkpoint(tmp_path, monkeypatch):
    monkeypatch.delenv("TIERSYNC_AUDIT_KEY", raising=False)
    config = str(write_config(tmp_path))
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    fill(store, AuditLog(), 8)
    store.close()
    runner = CliRunner()
    cp, archive = tmp_path / "pruned.json", tmp_path / "old.jsonl"
    result = runner.invoke(app, ["audit", "prune", "--before", (T0 + timedelta(hours=5)).isoformat(),
                                 "--checkpoint-out", str(cp), "--export", str(archive),
                                 "--config", config])
    assert result.exit_code == 0 and "pruned 5 entries (through seq 5)" in result.output
    assert [json.loads(line)["seq"] for line in archive.read_text().splitlines()] == [1, 2, 3, 4, 5]
    assert json.loads(cp.read_text())["count"] == 5
    result = runner.invoke(app, ["audit", "--verify", "--checkpoint", str(cp), "--config", config])
    assert result.exit_code == 0, result.output
    assert "entries 4 (appended 9, pruned 5)" in result.output and "intact" in result.output
    again = runner.invoke(app, ["audit", "prune", "--before", T0.isoformat(),
                                "--checkpoint-out", str(cp), "--config", config])
    assert again.exit_code == 0 and "nothing to prune" in again.output


def test_an_export_verifies_without_the_store_and_edits_in_it_are_caught(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERSYNC_AUDIT_KEY", KEY.decode())
    config = str(write_config(tmp_path))
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    fill(store, AuditLog(key=None), 3)  # an unkeyed start, then keyed
    fill(store, AuditLog(), 4, start=3)
    store.close()
    runner = CliRunner()
    cp = tmp_path / "cp.json"
    runner.invoke(app, ["audit", "checkpoint", "--out", str(cp), "--config", config])
    export = tmp_path / "export.jsonl"
    since = (T0 + timedelta(hours=1)).isoformat()
    export.write_text(runner.invoke(app, ["audit", "--since", since, "--format", "jsonl",
                                          "--config", config]).output)
    result = runner.invoke(app, ["audit", "verify-export", str(export), "--checkpoint", str(cp)])
    assert result.exit_code == 0, result.output
    assert "6 entries (seq 2-7, 4 keyed)" in result.output and "export intact" in result.output
    lines = export.read_text().splitlines()
    edited = json.loads(lines[2])
    edited["result"] = "changed"
    export.write_text("\n".join(lines[:2] + [json.dumps(edited)] + lines[3:]) + "\n")
    result = runner.invoke(app, ["audit", "verify-export", str(export)])
    assert result.exit_code == 1 and "entry 4: content does not match its hash" in result.output
    export.write_text("\n".join(lines[:-1]) + "\n")  # cut before the checkpoint's entry
    result = runner.invoke(app, ["audit", "verify-export", str(export), "--checkpoint", str(cp)])
    assert result.exit_code == 1 and "does not hold the checkpoint's entry 7" in result.output


def test_a_keyless_rewrite_of_an_export_is_caught_with_the_checkpoint(tmp_path, monkeypatch):
    from core.audit_evidence import check_export
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    fill(store, AuditLog(key=KEY), 4)
    with store.transaction() as tx:
        rows = [dict(r) for r in AuditLog(key=None).query(tx)]
        keyed_from = read_head(tx).keyed_from
    store.close()
    prev = GENESIS
    for row in rows:  # recomputed with plain SHA-256, as anyone without the key could
        row.update(result="rewritten", prev_hash=prev, at=row["at"].isoformat())
        row["hash"] = prev = _chain(prev, _content(row))
    lines = [json.dumps(row, default=str) for row in rows]
    assert check_export(lines, "x", KEY).problems == []  # alone it looks like an unkeyed chain
    found = check_export(lines, "x", KEY, keyed_from=keyed_from).problems
    assert len(found) == 4 and all("with TIERSYNC_AUDIT_KEY" in p for p in found)


def test_a_sync_without_the_key_of_a_keyed_chain_stops_before_it_starts(tmp_path, monkeypatch):
    config = str(write_config(tmp_path))
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    fill(store, AuditLog(key=KEY), 2)
    store.close()
    monkeypatch.delenv("TIERSYNC_AUDIT_KEY", raising=False)
    result = CliRunner().invoke(app, ["run", "--once", "--config", config])
    assert result.exit_code == 2
    assert "keyed since entry 1: set TIERSYNC_AUDIT_KEY" in result.output
    monkeypatch.setenv("TIERSYNC_AUDIT_KEY", KEY.decode())
    assert CliRunner().invoke(app, ["run", "--once", "--config", config]).exit_code == 0
