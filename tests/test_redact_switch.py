"""Text copied into another tracker is redacted by default, the origin keeps its text, the store
holds no credential, and each mapping's ``redact_secrets`` switch turns redaction off."""
from __future__ import annotations

from pathlib import Path

from core.connector import RemoteComment
from connectors.memory import MemoryConnector
from core.engine import SyncEngine
from core.mapping import load_mapping
from core.store import Store
from tests.engine_helpers import MAPPINGS, Clock, RouteToTier2, partner_ticket

SECRET_TEXT = "Root/Admin Password: Hunter2!root, door PIN 48213, key AKIAZ7Q3XK2MRT4VWP9B"
PLAINTEXT = ("Hunter2!root", "48213", "AKIAZ7Q3XK2MRT4VWP9B")


def _engine(tmp_path: Path, redact: dict[str, bool]) -> tuple[SyncEngine, dict, Path]:
    trackers = {"zendesk": MemoryConnector("zendesk"), "azure_devops": MemoryConnector("azure_devops")}
    mappings = {name: load_mapping(MAPPINGS / f"{name}.yaml").model_copy(
        update={"redact_secrets": redact.get(name, True)}) for name in trackers}
    db = tmp_path / "s.db"
    store = Store(f"sqlite:///{db}")
    store.migrate()
    return SyncEngine(store, trackers, mappings, RouteToTier2(), clock=Clock()), trackers, db


def _store_text(db: Path) -> str:
    return b"".join(p.read_bytes() for p in db.parent.glob("s.db*")).decode("latin-1")


def _put_ticket(t: dict) -> str:
    comment = RemoteComment(id="c1", body=f"More: {SECRET_TEXT}", public=True,
                            created_at=t["zendesk"].clock, author="partner@example.com")
    return t["zendesk"].put(partner_ticket(description=SECRET_TEXT), comments=[comment]).id


def test_copies_are_redacted_by_default_and_the_origin_keeps_its_text(tmp_path):
    engine, t, db = _engine(tmp_path, {})
    ticket = _put_ticket(t)
    engine.run_cycle()
    engine.run_cycle()
    [item] = t["azure_devops"].records.values()
    copied = item.data["System.Description"] + " ".join(c.body for c in item.comments)
    assert "[REDACTED]" in item.data["System.Description"]
    assert not [s for s in PLAINTEXT if s in copied]
    assert t["zendesk"].records[ticket].data["description"] == SECRET_TEXT
    engine.store.close()
    assert not [s for s in PLAINTEXT if s in _store_text(db)]


def test_echo_detection_still_works_on_redacted_text(tmp_path):
    engine, t, _ = _engine(tmp_path, {})
    _put_ticket(t)
    engine.run_cycle()
    engine.run_cycle()
    writes = (len(t["zendesk"].writes()), len(t["azure_devops"].writes()))
    report = engine.run_cycle()
    assert (len(t["zendesk"].writes()), len(t["azure_devops"].writes())) == writes
    assert report.changed == 0


def test_switched_off_on_both_mappings_text_is_copied_verbatim(tmp_path):
    engine, t, _ = _engine(tmp_path, {"zendesk": False, "azure_devops": False})
    _put_ticket(t)
    engine.run_cycle()
    [item] = t["azure_devops"].records.values()
    assert item.data["System.Description"] == SECRET_TEXT


def test_switched_off_at_the_source_only_the_target_still_gets_masked_text_without_loops(tmp_path):
    engine, t, _ = _engine(tmp_path, {"zendesk": False})
    _put_ticket(t)
    engine.run_cycle()
    engine.run_cycle()
    [item] = t["azure_devops"].records.values()
    assert not [s for s in PLAINTEXT if s in item.data["System.Description"]]
    writes = len(t["azure_devops"].writes())
    engine.run_cycle()
    assert len(t["azure_devops"].writes()) == writes
