"""Webhook hints through the real pipeline: bursts coalesce into one read, two webhooks at
once for a new ticket never make two escalations or two mirrors, and polling catches what a
dropped webhook missed. In-process: real listener, real connectors, the simulators over HTTP."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from bench.chaos_process import wait_until
from bench.chaos_scenario import People, make_cases
from bench.realtime_setup import add_webhook_sections, sim_webhook_target
from connectors.webhooks import endpoint_for, zendesk_signature
from core.daemon_loop import DaemonLoop
from core.hints import run_hints
from core.listener import Listener
from wiring import realtime
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e


class Daemon:
    """The daemon's parts in this process; ``loop()`` runs its loop in a thread."""

    def __init__(self, box: Sandbox, interval: float = 3600):
        config = box.load_config()
        self.engine = box.engine()
        endpoints = {n: endpoint_for(n, t) for n, t in config.trackers.items()}
        self.realtime = realtime(self.engine, config.policy, interval, endpoints)
        self.listener = Listener("127.0.0.1", 0)
        self.realtime.install(self.listener)
        self.listener.start()
        self.stop = threading.Event()
        self.interval = interval
        self.thread: threading.Thread | None = None

    def loop(self, wait: bool = True) -> None:
        loop = DaemonLoop(self.engine, self.interval, self.stop, hints=self.realtime.hints,
                          metrics=self.realtime.metrics, health=self.realtime.health)
        self.thread = threading.Thread(target=loop.run, daemon=True)
        self.thread.start()
        if wait:
            assert wait_until(lambda: self.realtime.health.last_cycle is not None, 60, poll=0.05)

    def close(self) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join(30)
        self.listener.stop()

    def zendesk_hook(self, ticket_id: int) -> int:
        body = ('{"ticket_id": "%d"}' % ticket_id).encode()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        secret = sim_webhook_target("zendesk", 0)["secret"]
        return requests.post(f"{self.listener.address}/webhooks/zendesk", data=body, timeout=10, headers={
            "X-Zendesk-Webhook-Signature": zendesk_signature(secret, stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp}).status_code


@pytest.fixture
def box(tmp_path):
    with Sandbox(tmp_path) as box:
        add_webhook_sections(box)
        yield box


def reads_before_writing(box: Sandbox, ticket_id: int) -> int:
    """show_many reads of the ticket before tiersync's first write anywhere (the hinted read;
    the outbox reads again before it writes back)."""
    reads = 0
    for r in box.sims["zendesk"].requests:
        if r.is_write:
            break
        if r.path.endswith("/tickets/show_many.json") and str(ticket_id) in ",".join(r.query.get("ids", [])):
            reads += 1
    return reads


def test_a_burst_of_webhooks_for_one_ticket_is_one_read(box):
    daemon = Daemon(box)
    try:
        people = People(box, make_cases(1, seed=5))
        people.intake()
        ticket = next(iter(people.tickets.values()))
        statuses = []
        threads = [threading.Thread(target=lambda: statuses.append(daemon.zendesk_hook(ticket)))
                   for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [202] * 20
        hinted = daemon.realtime.hints.take()
        assert hinted == {"zendesk": [str(ticket)]}
        metrics = daemon.realtime.metrics
        assert metrics.hints_coalesced.labels("zendesk")._value.get() == 19
        box.sims["zendesk"].clear_requests()
        report = run_hints(daemon.engine, hinted)
        assert reads_before_writing(box, ticket) == 1
        assert report.pulled == 1 and report.opened == 1 and report.connector_errors == []
    finally:
        daemon.close()


def test_two_webhooks_at_once_for_a_new_ticket_make_one_escalation_and_one_mirror(box):
    daemon = Daemon(box)
    daemon.loop()
    try:
        people = People(box, make_cases(1, seed=8))
        people.intake()
        ticket = next(iter(people.tickets.values()))
        barrier = threading.Barrier(2)

        def hook() -> None:
            barrier.wait()
            daemon.zendesk_hook(ticket)
        threads = [threading.Thread(target=hook) for _ in range(2)]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: people.ado_items(), 30, poll=0.05), "mirrored without waiting for a poll"
        for _ in range(3):  # more hints for the same ticket while and after it is mirrored
            daemon.zendesk_hook(ticket)
        time.sleep(1.0)
        assert wait_until(lambda: daemon.realtime.hints.depth() == 0, 30, poll=0.05)
        time.sleep(0.5)
        assert [len(ids) for ids in people.ado_items().values()] == [1]
        assert all(len(keys) == 1 for keys in people.jira_issues().values())
        with daemon.engine.store.transaction() as tx:
            links = daemon.engine.store.links_for(tx, "zendesk", [str(ticket)])
        assert list(links) == [str(ticket)]
        with daemon.engine.store.transaction() as tx:
            assert daemon.engine.store.count_actions(tx).get("dead", 0) == 0
    finally:
        daemon.close()


def test_polling_catches_what_a_dropped_webhook_missed(box):
    daemon = Daemon(box, interval=1.0)
    daemon.loop()
    try:
        target = {**sim_webhook_target("zendesk", int(daemon.listener.address.rsplit(":", 1)[1])),
                  "drop_rate": 1.0}
        assert requests.post(f"{box.sims['zendesk'].base_url}/_sim/webhooks", json=target).ok
        people = People(box, make_cases(1, seed=9))
        people.intake()
        assert wait_until(lambda: people.ado_items(), 30, poll=0.1)
        deliveries = requests.get(f"{box.sims['zendesk'].base_url}/_sim/webhooks").json()["deliveries"]
        assert deliveries and all(d["dropped"] for d in deliveries)
        assert daemon.realtime.metrics.webhooks.labels("zendesk", "accepted")._value.get() == 0
    finally:
        daemon.close()


def test_hints_are_read_while_a_long_poll_runs(box):
    backlog = People(box, make_cases(36, seed=12))
    backlog.intake()  # the first poll has 36 tickets to read, 2 a page, slowly
    box.settle()  # ... once the export shows them (its hold-back; else the first poll reads none)
    zendesk = box.sims["zendesk"]
    zendesk.export_page_size = 2
    zendesk.set_faults(latency_ms=80)
    daemon = Daemon(box)
    daemon.loop(wait=False)
    try:
        assert wait_until(lambda: daemon.realtime.metrics.counters["pulled"]._value.get() > 0
                          or bool(daemon.engine.store and _cursor(daemon)), 60, poll=0.02)
        late = People(box, [c for c in make_cases(30, seed=13) if c.open][:1])
        late.intake()
        sr = late.cases[0].sr
        daemon.zendesk_hook(late.tickets[sr])
        assert wait_until(lambda: sr in late.ado_items(), 60, poll=0.02)
        assert daemon.realtime.health.last_cycle is None, "mirrored before the poll finished"
        assert wait_until(lambda: daemon.realtime.health.last_cycle is not None, 120, poll=0.1)
        assert len(late.ado_items()[sr]) == 1
    finally:
        zendesk.set_faults(latency_ms=0)
        daemon.close()


def _cursor(daemon: Daemon) -> bool:
    with daemon.engine.store.transaction() as tx:
        return daemon.engine.store.get_cursor(tx, "zendesk") is not None
