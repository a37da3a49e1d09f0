"""`tiersync daemon --listen` as a real process with the simulators sending their webhooks:
duplicated, delayed and reordered webhooks still give one mirror each, well before the next
poll; forged ones are refused and counted; /metrics and JSON logs carry what an admin needs."""
from __future__ import annotations

import json
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.chaos_process import wait_until
from bench.chaos_scenario import People, make_cases
from bench.realtime_setup import add_webhook_sections, free_port, point_webhooks, start_daemon
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e


def ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def samples(port: int) -> dict[tuple, float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_daemon_mirrors_on_webhooks_before_the_next_poll(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERSYNC_LOG_FORMAT", "json")
    with Sandbox(tmp_path) as box:
        add_webhook_sections(box)
        port = free_port()
        log = tmp_path / "daemon.log"
        proc = start_daemon(box, port, log, interval=120)  # no second poll during the test
        try:
            assert wait_until(lambda: ready(port), 60, poll=0.1), log.read_text()
            point_webhooks(box, port, {"duplicate_rate": 1.0, "delay_ms": 100,
                                       "delay_jitter_ms": 200, "reorder": True, "seed": 4})
            people = People(box, make_cases(4, seed=2))
            started = time.monotonic()
            people.intake()
            assert wait_until(lambda: len(people.ado_items()) == 4, 60, poll=0.05), log.read_text()
            assert time.monotonic() - started < 60
            people.tier2_picks_up()  # Azure DevOps edits flow back to Zendesk through webhooks
            assert wait_until(lambda: set(people.ticket_status().values()) == {"open"}, 60,
                              poll=0.05), people.ticket_status()
            time.sleep(1.0)
            assert all(len(ids) == 1 for ids in people.ado_items().values())
            forged = requests.post(f"http://127.0.0.1:{port}/webhooks/zendesk",
                                   data=b'{"ticket_id": "1"}', timeout=10,
                                   headers={"X-Zendesk-Webhook-Signature": "Zm9yZ2Vk",
                                            "X-Zendesk-Webhook-Signature-Timestamp": "1"})
            assert forged.status_code == 401
            got = samples(port)
            assert got[("tiersync_webhooks_total", (("result", "bad-signature"), ("tracker", "zendesk")))] == 1
            accepted = sum(v for (name, labels), v in got.items() if name == "tiersync_webhooks_total"
                           and ("result", "accepted") in labels)
            assert accepted >= 4
            assert ("tiersync_sla_open", (("metric", "acknowledgement"), ("status", "breached"))) in got
            assert got[("tiersync_ready", ())] == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, log.read_text()
    hint_runs = [l for l in lines if l["message"].startswith("webhook hints")]
    assert hint_runs and all(l["run_id"].startswith("hint-") for l in hint_runs)
    refused = [l for l in lines if "refused" in l["message"]]
    assert refused and refused[0]["tracker"] == "zendesk"
