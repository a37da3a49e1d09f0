"""The creates of an outbox batch look their idempotency keys up together (core/outbox_lookup.py),
and a record found that way is adopted, never created twice."""
from __future__ import annotations

from tests.engine_helpers import make_engine, partner_ticket


def _finds(connector) -> list[tuple]:
    return [c for c in connector.calls if c[0] in ("find", "find_many")]


def test_a_batchs_creates_look_their_keys_up_in_one_call(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    for n in range(3):
        t["zendesk"].put(partner_ticket(subject=f"1234567890123{n} - case {n}"))
    engine.run_cycle()
    finds = _finds(t["azure_devops"])
    assert [c[0] for c in finds] == ["find_many"] and len(finds[0][1]) == 3
    assert len([c for c in t["azure_devops"].calls if c[0] == "create"]) == 3


def test_a_key_found_by_the_batch_lookup_is_adopted_not_created_again(tmp_path):
    engine, t = make_engine(tmp_path / "s.db")
    tickets = [t["zendesk"].put(partner_ticket(subject=f"1234567890123{n} - case {n}")) for n in range(2)]
    engine.run_cycle()
    ado = t["azure_devops"]
    created = {r.idempotency_key: r.id for r in ado.records.values()}
    # a lost store: a fresh one sees the same tickets and queues the same creates again; its
    # Azure DevOps feed starts after the mirrors (older than the feed's start), so only the
    # creates' key lookup can find them
    engine, _ = make_engine(tmp_path / "fresh.db", trackers=t)
    with engine.store.transaction() as tx:
        engine.store.set_cursor(tx, "azure_devops", "records", str(ado.seq), engine.clock())
    ado.calls.clear()
    engine.run_cycle()
    assert [c[0] for c in _finds(ado)] == ["find_many"] and not [c for c in ado.calls if c[0] == "create"]
    assert {r.idempotency_key: r.id for r in ado.records.values()} == created
    with engine.store.transaction() as tx:
        links = engine.store.links_for(tx, "zendesk", [tk.id for tk in tickets])
        stored = engine.store.get_escalations(tx, [l.escalation_id for l in links.values()])
    assert sorted(s.escalation.link_for("azure_devops").remote_id for s in stored.values()) == \
        sorted(created.values())
