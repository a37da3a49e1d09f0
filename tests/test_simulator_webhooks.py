"""The simulators' outgoing webhooks: signed as each vendor signs, configured through the
``/_sim/webhooks`` HTTP API, with drop, duplicate, delay and reorder faults."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bench.chaos_process import wait_until
from connectors.webhooks import (Secrets, WebhookConfig, azure_devops_ids, jira_ids,
                                 verify_azure_devops, verify_jira, verify_zendesk, zendesk_ids)
from simulators.azure_devops import AzureDevOpsSimulator
from simulators.jira import JiraSimulator
from simulators.zendesk import ZendeskSimulator


class Receiver:
    def __init__(self):
        self.got: list[tuple[float, dict, bytes]] = []
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def _app(self, environ, start_response):
        request = Request(environ)
        self.got.append((time.time(), dict(request.headers), request.get_data()))
        return Response("", status=202)(environ, start_response)

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def configure(sim, **settings) -> dict:
    reply = requests.post(f"{sim.base_url}/_sim/webhooks", data=json.dumps(settings), timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def zendesk_sim():
    sim = ZendeskSimulator()
    sim.start()
    return sim


def first_ticket(sim) -> int:
    return min(sim.state.tickets)


def test_zendesk_webhooks_are_signed_as_zendesk_signs(receiver):
    sim = zendesk_sim()
    try:
        status = configure(sim, url=receiver.url, secret="zd-secret")
        assert status["settings"]["secret"] == "***"
        tid = first_ticket(sim)
        sim.edit_ticket(tid, {"priority": "urgent"})
        assert wait_until(lambda: receiver.got, 10, poll=0.02)
        _at, headers, body = receiver.got[0]
        payload = verify_zendesk(Secrets("zd-secret"), WebhookConfig(), headers, body,
                                 datetime.now(timezone.utc))
        assert zendesk_ids(payload) == [str(tid)]
    finally:
        sim.stop()


def test_jira_and_azure_devops_webhooks_verify(receiver):
    jira, ado = JiraSimulator(), AzureDevOpsSimulator()
    jira.start(), ado.start()
    try:
        configure(jira, url=receiver.url, secret="jira-secret")
        configure(ado, url=receiver.url, username="hook", password="pw",
                  headers={"X-Tiersync-Webhook-Secret": "hdr"})
        key = jira.human_create({"summary": "Webhook test"})
        item = ado.human_create({"System.Title": "Webhook test"})
        assert wait_until(lambda: len(receiver.got) >= 2, 10, poll=0.02)
        now = datetime.now(timezone.utc)
        named = []
        for _at, headers, body in receiver.got:
            if "X-Hub-Signature" in headers:
                named += jira_ids(verify_jira(Secrets("jira-secret"), WebhookConfig(), headers, body, now))
            else:
                payload = verify_azure_devops(Secrets("hdr", "hook", "pw"), WebhookConfig(),
                                              headers, body, now)
                assert payload["eventType"] == "workitem.created"
                named += azure_devops_ids(payload)
        assert sorted(named) == sorted([key, str(item)])
    finally:
        jira.stop(), ado.stop()


def test_drop_duplicate_and_delay(receiver):
    sim = zendesk_sim()
    try:
        tid = first_ticket(sim)
        configure(sim, url=receiver.url, secret="s", drop_rate=1.0)
        sim.edit_ticket(tid, {"priority": "high"})
        assert wait_until(lambda: requests.get(f"{sim.base_url}/_sim/webhooks").json()["deliveries"], 10)
        time.sleep(0.3)
        assert receiver.got == []
        configure(sim, drop_rate=0.0, duplicate_rate=1.0, delay_ms=300)
        changed = time.time()
        sim.edit_ticket(tid, {"priority": "low"})
        assert wait_until(lambda: len(receiver.got) == 2, 10, poll=0.02)
        assert all(at - changed >= 0.3 for at, _h, _b in receiver.got)
        assert receiver.got[0][2] == receiver.got[1][2]
        deliveries = requests.get(f"{sim.base_url}/_sim/webhooks").json()["deliveries"]
        assert [d["dropped"] for d in deliveries] == [True, False, False]
        assert sorted(d["duplicate"] for d in deliveries[1:]) == [False, True]
    finally:
        sim.stop()


def test_reorder_sends_a_burst_out_of_order(receiver):
    sim = zendesk_sim()
    try:
        ids = [sim.create_ticket({"subject": f"Burst {n}", "description": "x",
                                  "requester": {"email": f"r{n}@example.com", "name": f"R {n}"}})
               for n in range(10)]
        configure(sim, url=receiver.url, secret="s", reorder=True, seed=3)
        with sim.lock:  # one burst: the watcher sees every change in the same look
            for tid in ids:
                sim.edit_ticket(tid, {"priority": "urgent"})
        assert wait_until(lambda: len(receiver.got) == 10, 10, poll=0.02)
        order = [json.loads(body)["ticket_id"] for _at, _h, body in receiver.got]
        assert sorted(order, key=int) == [str(t) for t in ids] and order != [str(t) for t in ids]
    finally:
        sim.stop()


def test_unknown_settings_are_refused():
    sim = zendesk_sim()
    try:
        reply = requests.post(f"{sim.base_url}/_sim/webhooks", data=json.dumps({"lose_rate": 1}))
        assert reply.status_code == 400 and "lose_rate" in reply.text
    finally:
        sim.stop()
