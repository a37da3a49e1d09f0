"""Webhooks in the chaos bench: the simulators' signed webhooks with drops and duplicates, each
tracker's pointed at one of the daemons, and a forger that keeps sending forged ones.

- every daemon of the fleet listens on its own port (``daemon --listen``); tracker number n
  sends its webhooks to daemon n mod N, so a SIGKILLed daemon misses its tracker's webhooks
  until it is back (the vendors retry a little, then give up: the poll catches up);
- the simulators drop ``drop_rate`` and duplicate ``duplicate_rate`` of their webhooks;
- :class:`Forger` posts one forged webhook every ``every`` seconds to a random daemon, rotating
  through the forged-request table of tests/test_webhook_signatures.py (bad signature, missing
  header, stale timestamp, a Zendesk-signed body at the Jira endpoint, a 10 MB body, Azure
  DevOps without its shared header) and counts those answered 2xx: ``forged_accepted``
  (want 0). A refused connection (the daemon is down) counts as neither.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from bench.realtime_setup import SECRETS, add_webhook_sections, free_port, point_webhooks, sim_webhook_target
from harness.sandbox import Sandbox


def listen_ports(count: int) -> list[int]:
    return [free_port() for _ in range(count)]


def webhooks_on(box: Sandbox, ports: list[int], drop_rate: float, duplicate_rate: float,
                seed: int) -> None:
    """Point tracker n's webhooks at daemon n mod N, with drops and duplicates."""
    for number, (name, sim) in enumerate(box.sims.items()):
        body = {**sim_webhook_target(name, ports[number % len(ports)]), "drop_rate": drop_rate,
                "duplicate_rate": duplicate_rate, "seed": seed + number}
        requests.post(f"{sim.base_url}/_sim/webhooks", data=json.dumps(body),
                      timeout=10).raise_for_status()


def webhooks_off(box: Sandbox, ports: list[int]) -> None:
    point_webhooks(box, ports[0], {"enabled": False})


def configure(box: Sandbox) -> None:
    add_webhook_sections(box)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _zendesk(body: bytes, secret: str, stamp: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {"Content-Type": "application/json", "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode()}


def forgeries() -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(what, tracker endpoint, body, headers) of each forged request."""
    now = datetime.now(timezone.utc)
    ticket = json.dumps({"ticket_id": str(random.randint(1, 10**6))}).encode()
    issue = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"id": "10001",
                                                                         "key": "T2-1"}}).encode()
    item = json.dumps({"eventType": "workitem.updated", "resource": {"workItemId": 1}}).encode()
    good = SECRETS["ZENDESK_WEBHOOK_SECRET"]
    basic = base64.b64encode(f"{SECRETS['ADO_WEBHOOK_USER']}:{SECRETS['ADO_WEBHOOK_PASSWORD']}"
                             .encode()).decode()
    return [
        ("bad_signature", "zendesk", ticket, _zendesk(ticket, "not-the-secret", _stamp(now))),
        ("missing_header", "zendesk", ticket, {"Content-Type": "application/json"}),
        ("stale_timestamp", "zendesk", ticket, _zendesk(ticket, good, _stamp(now - timedelta(hours=1)))),
        ("wrong_tracker", "jira", ticket, _zendesk(ticket, good, _stamp(now))),
        ("jira_bad_signature", "jira", issue, {"X-Hub-Signature": "sha256=" + "0" * 64}),
        ("ado_no_header", "azure_devops", item, {"Authorization": "Basic " + basic}),
        ("body_10mb", "zendesk", b"{" + b" " * (10 * 1024 * 1024) + b"}",
         _zendesk(b"{}", good, _stamp(now))),
    ]


@dataclass
class ForgeryCounts:
    sent: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # status -> count
    unreachable: int = 0


class Forger(threading.Thread):
    def __init__(self, ports: list[int], every: float, seed: int, log: Path):
        super().__init__(name="forger", daemon=True)
        self.ports, self.every = ports, every
        self.rng = random.Random(f"{seed}:forger")
        self.halt = threading.Event()
        self.counts = ForgeryCounts()
        self.log = log

    def run(self) -> None:
        turn = 0
        while not self.halt.wait(self.every):
            table = forgeries()
            what, tracker, body, headers = table[turn % len(table)]
            turn += 1
            self._send(what, tracker, body, headers)

    def _send(self, what: str, tracker: str, body: bytes, headers: dict[str, str]) -> None:
        port = self.rng.choice(self.ports)
        try:
            reply = requests.post(f"http://127.0.0.1:{port}/webhooks/{tracker}", data=body,
                                  headers=headers, timeout=10)
        except requests.RequestException:
            self.counts.unreachable += 1
            return
        self.counts.sent += 1
        if 200 <= reply.status_code < 300:
            self.counts.accepted += 1
            with open(self.log, "a") as out:
                out.write(f"ACCEPTED forged {what} at {tracker}: {reply.status_code}\n")
        key = str(reply.status_code)
        self.counts.refused[key] = self.counts.refused.get(key, 0) + 1
