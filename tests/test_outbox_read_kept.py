"""The records an outbox pass reads before commenting are kept for that pass's later comments,
but only the most recent ones (``core.outbox.READ_KEPT``, at least four claimed batches): a pass
over N records no longer holds N records (bench/engine.py's memory at N = 10,000)."""
from __future__ import annotations

from connectors.memory import MemoryConnector
from core import outbox
from core.engine import CycleReport
from core.outbox import OutboxApplier
from tests.engine_helpers import make_engine, partner_ticket

N = 12


def test_a_pass_keeps_only_the_most_recent_records_read(tmp_path, monkeypatch):
    trackers = {"zendesk": MemoryConnector("zendesk"), "azure_devops": MemoryConnector("azure_devops")}
    engine, t = make_engine(tmp_path / "s.db", trackers)
    for n in range(N):
        t["zendesk"].put(partner_ticket(subject=f"1234567890{n:04d} - case {n}"))
    for _ in range(4):
        engine.run_cycle()
    assert len(t["azure_devops"].records) == N
    for remote_id in list(t["azure_devops"].records):  # each announced on Zendesk as a comment
        t["azure_devops"].edit(remote_id, **{"System.State": "Actively Working"})
    engine.pull("azure_devops", CycleReport(run_id="wave"), lambda: False)
    monkeypatch.setattr(outbox, "READ_KEPT", 3)
    engine.settings.outbox_batch = 1
    applier = OutboxApplier(engine)
    assert applier.read.maxsize == 4  # four claimed batches of one
    t["zendesk"].calls.clear()
    report = CycleReport(run_id="send")
    applier.apply(report, lambda: False, connector="zendesk")
    commented = {c[1] for c in t["zendesk"].calls if c[0] == "comment"}
    assert len(commented) == N and report.actions_dead == 0
    assert len(applier.read) == 4 < N  # the last four records read, not all twelve
    assert set(k[1] for k in applier.read) <= commented
