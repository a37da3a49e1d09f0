"""A bounded store: history keeps what changed (reconstructable), prune removes what the engine
no longer needs and leaves the audit chain verifiable, a 5 MB description is not copied per
version, and a store written by the full-copy history is converted."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from core.connector import RemoteComment
from core import schema as t
from core.audit import AuditLog
from core.audit_chain import verify_chain
from core.model import Escalation
from core.prune import prune
from core.store import Store
from tests.engine_helpers import Clock, make_engine, partner_ticket

def _previous_release() -> list:
    """The migrations a store had before history became changes (this release's first one)."""
    first = next(i for i, m in enumerate(t.MIGRATIONS) if m[2] is t._history_as_changes)
    return t.MIGRATIONS[:first]


_values = st.one_of(st.none(), st.text(max_size=30), st.integers(-5, 5))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.fixed_dictionaries({"title": st.text(min_size=1, max_size=40),
                                       "description": st.one_of(st.none(), st.text(max_size=200)),
                                       "offer_ids": st.lists(st.text(max_size=8), max_size=4),
                                       "queue": _values.map(lambda v: None if v is None else str(v))}),
                min_size=1, max_size=6))
def test_every_version_is_rebuilt_exactly_from_the_changes(tmp_path_factory, versions):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('h') / 's.db'}")
    store.migrate()
    clock = Clock()
    esc = Escalation(created_at=clock(), updated_at=clock(), **versions[0])
    saved = [esc.model_dump(mode="json")]
    with store.transaction() as tx:
        store.save_escalation(tx, esc, {}, by="zendesk", run_id="r", previous_version=None)
        for number, fields in enumerate(versions[1:], start=2):
            previous, esc = esc.version, esc.model_copy(update={**fields, "version": number,
                                                                "updated_at": clock.advance(minutes=1)})
            store.save_escalation(tx, esc, {}, by="jira", run_id="r", previous_version=previous)
            saved.append(esc.model_dump(mode="json"))
        history = store.history_of(tx, esc.id)
    store.close()
    assert [h["data"] for h in history] == saved
    assert [h["version"] for h in history] == list(range(1, len(saved) + 1))


def _changes_bytes(store: Store) -> int:
    with store.transaction() as tx:
        return sum(len(str(p)) for p in tx.execute(select(t.changes.c.patch)).scalars())


def test_a_big_description_is_stored_once_not_once_per_version(tmp_path):
    engine, trackers = make_engine(tmp_path / "s.db")
    big = "stack trace line at InvoiceService.render(InvoiceService.java:42)\n" * 20_000  # 1.3 MB
    ticket = trackers["zendesk"].put(partner_ticket(description=big))
    engine.run_cycle()
    for n, severity in enumerate(["sev_3", "sev_4", "sev_1"]):
        record = trackers["zendesk"].records[ticket.id]
        trackers["zendesk"].put({**record.data, "custom_fields.360010000002": severity},
                                remote_id=ticket.id)
        engine.run_cycle()
    with engine.store.transaction() as tx:
        [eid] = tx.execute(select(t.escalations.c.id)).scalars().all()
        history = engine.store.history_of(tx, eid)
        audit_bytes = sum(len(str(r["before"])) + len(str(r["after"])) for r in AuditLog().query(tx))
    assert len(history) >= 4 and all(h["data"]["description"] == big for h in history)
    assert _changes_bytes(engine.store) < 20_000, "history holds diffs, not the description"
    assert audit_bytes < 100_000, "the audit log holds a digest of long text, not the text"


def test_prune_keeps_what_the_engine_needs_and_the_audit_chain(tmp_path):
    clock = Clock()
    engine, trackers = make_engine(tmp_path / "s.db", clock=clock)
    ticket = trackers["zendesk"].put(partner_ticket())
    engine.run_cycle()
    for severity in ("sev_3", "sev_4"):
        clock.advance(minutes=5)
        record = trackers["zendesk"].records[ticket.id]
        trackers["zendesk"].put({**record.data, "custom_fields.360010000002": severity},
                                remote_id=ticket.id)
        engine.run_cycle()
    store = engine.store
    now = clock.advance(days=40)
    with store.transaction() as tx:
        dead = store.enqueue(tx, escalation_id="esc-x", connector="azure_devops", kind="update",
                             remote_id="1", payload={"fields": {}}, now=now - timedelta(days=90))
        store.finish_action(tx, dead, "dead", now - timedelta(days=90), error="gone")
        pending = store.enqueue(tx, escalation_id="esc-x", connector="azure_devops", kind="comment",
                                payload={"body": "x"}, now=now - timedelta(days=90))
        audit_before = tx.execute(select(func.count()).select_from(t.audit)).scalar()
        versions_before = tx.execute(select(func.count()).select_from(t.changes)).scalar()
        done_keys = [r.dedupe_key for r in store.actions(tx, state="done") if r.dedupe_key]
        result = prune(tx, now - timedelta(days=30), now)
    with store.transaction() as tx:
        states = {r.id: r.state for r in store.actions(tx)}
        assert result.outbox > 0 and set(states) == {dead, pending}, "only finished rows go"
        assert result.history == versions_before - 1, "each escalation keeps its newest change"
        assert tx.execute(select(func.count()).select_from(t.audit)).scalar() == audit_before
        assert verify_chain(tx, AuditLog().key).problems == []
        [eid] = tx.execute(select(t.escalations.c.id)).scalars().all()
        [newest] = store.history_of(tx, eid)
        assert newest["data"] == store.get_escalation(tx, eid).escalation.model_dump(mode="json")
        assert done_keys and all(store.enqueue(tx, escalation_id=eid, connector="azure_devops",
                                               kind="create", payload={}, now=now, dedupe_key=k)
                                 is None for k in done_keys), "pruned creates are never queued again"
    writes = len(trackers["azure_devops"].writes())
    engine.run_cycle()
    assert len(trackers["azure_devops"].writes()) == writes, "the pruned store syncs on quietly"


def test_a_store_with_full_copy_history_is_converted(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    for number, _, step in _previous_release():  # the store as the previous release left it
        with store.engine.begin() as conn:
            step(conn)
            conn.execute(insert(t.schema_version).values(version=number))
    clock = Clock()
    esc = Escalation(title="v1", created_at=clock(), updated_at=clock())
    copies = [esc, esc.model_copy(update={"title": "v2", "version": 2}),
              esc.model_copy(update={"title": "v3", "version": 3, "queue": "Q"})]
    with store.engine.begin() as conn:
        conn.execute(insert(t.escalations).values(id=esc.id, version=3, state="new",
                                                  data=copies[-1].model_dump(mode="json"),
                                                  field_times={}, created_at=clock(), updated_at=clock()))
        for copy in copies:
            conn.execute(insert(t.history).values(escalation_id=esc.id, version=copy.version, by="x",
                                                  at=clock(), data=copy.model_dump(mode="json")))
    store.migrate()
    with store.transaction() as tx:
        assert [h["data"]["title"] for h in store.history_of(tx, esc.id)] == ["v1", "v2", "v3"]
        summaries = tx.execute(select(t.history.c.data).order_by(t.history.c.version)).scalars().all()
        assert [d["title"] for d in summaries] == ["v1", "v2", "v3"]  # for reports: scalars only
        assert all("comments" not in d and "links" not in d for d in summaries)
    store.close()


def test_comment_dedupe_survives_prune(tmp_path):
    clock = Clock()
    engine, trackers = make_engine(tmp_path / "s.db", clock=clock)
    comment = RemoteComment(id="c1", body="Partner: still failing", public=True,
                            created_at=clock(), author="p@example.com")
    trackers["zendesk"].put(partner_ticket(), comments=[comment])
    engine.run_cycle()
    copies = lambda: sum("still failing" in c.body for r in trackers["azure_devops"].records.values()
                         for c in r.comments)
    assert copies() == 1
    now = clock.advance(days=10)
    with engine.store.transaction() as tx:
        prune(tx, now, now)
        engine.store.set_cursor(tx, "zendesk", "records", None, now)  # the whole feed read again
    engine.run_cycle()
    assert copies() == 1


def test_an_old_store_holding_plaintext_credentials_is_masked_by_the_migration(tmp_path):
    from core.redact import MASK
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    for number, _, step in _previous_release():
        with store.engine.begin() as conn:
            step(conn)
            conn.execute(insert(t.schema_version).values(version=number))
    clock = Clock()
    secret = "Root/Admin Password: Hunter2!root"
    esc = Escalation(title="x", description=secret, created_at=clock(), updated_at=clock())
    with store.engine.begin() as conn:
        conn.execute(insert(t.escalations).values(id=esc.id, version=1, state="new",
                                                  data=esc.model_dump(mode="json"), field_times={},
                                                  created_at=clock(), updated_at=clock()))
        conn.execute(insert(t.history).values(escalation_id=esc.id, version=1, by="x", at=clock(),
                                              data=esc.model_dump(mode="json")))
        conn.execute(insert(t.links).values(tracker="zendesk", remote_id="1", escalation_id=esc.id,
                                            role="origin", last_data={"description": secret},
                                            last_hash="h", seen_comments=[], updated_at=clock()))
    store.migrate()
    with store.transaction() as tx:
        assert store.get_escalation(tx, esc.id).escalation.description == f"Root/Admin Password: {MASK}"
        link = store.links_for(tx, "zendesk", ["1"])["1"]
        assert MASK in link.last_data["description"] and link.last_hash is None
    store.close()
    assert b"Hunter2!root" not in b"".join(p.read_bytes() for p in tmp_path.glob("old.db*"))
