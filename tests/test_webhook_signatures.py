"""Webhook verification against the vendors' documented algorithms, and the forged-request table.

Zendesk: base64(HMAC-SHA256(secret, timestamp + body)) (developer.zendesk.com/documentation/
webhooks/verifying/); Jira Cloud: ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>``
(developer.atlassian.com/cloud/jira/platform/webhooks/); Azure DevOps: basic auth and/or a
header set on the subscription. Requests go over real HTTP to the daemon's listener.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
import requests

from connectors.webhooks import (Secrets, WebhookConfig, WebhookRejected, azure_devops_ids,
                                 endpoint_for, jira_ids, jira_signature, verify_jira,
                                 verify_zendesk, zendesk_ids, zendesk_signature)
from core.hints import HintQueue
from core.listener import Listener
from core.metrics import Metrics
from core.webhook_route import webhook_routes
from simulators import webhook_formats

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
ZD_SECRET, JIRA_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmc=", "jira-secret-1"


def test_zendesk_signature_is_base64_hmac_sha256_of_timestamp_then_body():
    body, stamp = b'{"ticket_id":"7"}', "2026-12-01T12:00:00Z"
    expected = base64.b64encode(hmac.new(ZD_SECRET.encode(), (stamp + body.decode()).encode(),
                                         hashlib.sha256).digest()).decode()
    assert zendesk_signature(ZD_SECRET, stamp, body) == expected
    # the timestamp is part of what is signed: moving it breaks the signature
    assert zendesk_signature(ZD_SECRET, "2026-12-01T12:00:01Z", body) != expected


def test_jira_signature_is_sha256_hex_hmac_of_the_raw_body():
    body = b'{"webhookEvent":"jira:issue_updated"}'
    assert jira_signature(JIRA_SECRET, body) == "sha256=" + hmac.new(
        JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_what_the_simulators_sign_verifies():
    zd_body, zd_headers = webhook_formats.zendesk(
        {"id": "7", "created": False, "kind": "updated"}, {"secret": ZD_SECRET})
    stamp = zd_headers["X-Zendesk-Webhook-Signature-Timestamp"]
    now = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    payload = verify_zendesk(Secrets(ZD_SECRET), WebhookConfig(), zd_headers, zd_body, now)
    assert zendesk_ids(payload) == ["7"]
    body, headers = webhook_formats.jira({"id": "ENG-4", "numeric_id": 10004, "created": True,
                                          "kind": "updated"}, {"secret": JIRA_SECRET})
    payload = verify_jira(Secrets(JIRA_SECRET), WebhookConfig(), headers, body,
                          datetime.now(timezone.utc))
    assert jira_ids(payload) == ["ENG-4"]


@pytest.mark.parametrize("payload, ids", [
    ({"ticket_id": "12"}, ["12"]),
    ({"type": "zen:event-type:ticket.status_changed", "detail": {"id": "13"}}, ["13"]),
    ({"type": "zen:event-type:user.created", "detail": {"id": "99"}}, []),
    ({"ticket_id": "12; DROP"}, []),
])
def test_zendesk_record_ids(payload, ids):
    assert zendesk_ids(payload) == ids


@pytest.mark.parametrize("payload, ids", [
    ({"eventType": "workitem.updated", "resource": {"id": 5, "workItemId": 42}}, ["42"]),
    ({"eventType": "workitem.created", "resource": {"id": 43}}, ["43"]),
    ({"eventType": "workitem.commented", "resource": {"id": 7, "workItemId": 44}}, ["44"]),
    ({"eventType": "git.push", "resource": {"id": 1}}, []),
])
def test_azure_devops_record_ids(payload, ids):
    assert azure_devops_ids(payload) == ids


# -- over HTTP: the forged-request table ----------------------------------------------------------
class Tracker:
    def __init__(self, kind: str, webhook: dict | None):
        self.kind = kind
        self.webhook = WebhookConfig(**webhook) if webhook is not None else None


@pytest.fixture
def daemon(monkeypatch):
    monkeypatch.setenv("T_ZD_SECRET", ZD_SECRET)
    monkeypatch.setenv("T_JIRA_SECRET", JIRA_SECRET)
    monkeypatch.setenv("T_ADO_USER", "hook")
    monkeypatch.setenv("T_ADO_PASSWORD", "pw-1")
    trackers = {"zendesk": Tracker("zendesk", {"secret_env": "T_ZD_SECRET"}),
                "jira": Tracker("jira", {"secret_env": "T_JIRA_SECRET"}),
                "azure_devops": Tracker("azure_devops", {"username_env": "T_ADO_USER",
                                                         "password_env": "T_ADO_PASSWORD"}),
                "jira_unsigned": Tracker("jira", None)}
    endpoints = {n: e for n, t in trackers.items() if (e := endpoint_for(n, t)) is not None}
    hints, metrics = HintQueue(), Metrics()
    listener = Listener("127.0.0.1", 0)
    webhook_routes(listener, list(trackers), endpoints, hints, metrics)
    listener.start()
    yield listener.address, hints, metrics
    listener.stop()


def zendesk_request(body: bytes, stamp: str | None = None, secret: str = ZD_SECRET):
    stamp = stamp or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return body, {"X-Zendesk-Webhook-Signature": zendesk_signature(secret, stamp, body),
                  "X-Zendesk-Webhook-Signature-Timestamp": stamp, "Content-Type": "application/json"}


def jira_body(key: str = "ENG-1", at: datetime | None = None) -> bytes:
    at = at or datetime.now(timezone.utc)
    return json.dumps({"timestamp": int(at.timestamp() * 1000), "webhookEvent": "jira:issue_updated",
                       "issue": {"id": "10001", "key": key}}).encode()


def ado_body(item: int = 42) -> bytes:
    return json.dumps({"eventType": "workitem.updated", "resource": {"workItemId": item},
                       "createdDate": datetime.now(timezone.utc).isoformat()}).encode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def forged_cases():
    good = b'{"ticket_id": "7"}'
    stale = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body, headers = zendesk_request(good)
    yield "zendesk bad signature", "zendesk", good, {**headers, "X-Zendesk-Webhook-Signature": "AAAA"}, 401, "bad-signature"
    yield "zendesk signed with another secret", "zendesk", *zendesk_request(good, secret="guess"), 401, "bad-signature"
    yield "zendesk body changed after signing", "zendesk", b'{"ticket_id": "8"}', headers, 401, "bad-signature"
    yield "zendesk missing signature", "zendesk", good, {"Content-Type": "application/json"}, 401, "unsigned"
    yield "zendesk missing timestamp", "zendesk", good, {"X-Zendesk-Webhook-Signature": headers["X-Zendesk-Webhook-Signature"]}, 401, "unsigned"
    yield "zendesk stale timestamp (replay)", "zendesk", *zendesk_request(good, stamp=stale), 401, "stale"
    yield "zendesk webhook sent to the jira endpoint", "jira", body, headers, 401, "unsigned"
    yield "jira bad signature", "jira", jira_body(), {"X-Hub-Signature": "sha256=" + "0" * 64}, 401, "bad-signature"
    yield "jira missing signature", "jira", jira_body(), {}, 401, "unsigned"
    old = jira_body(at=datetime.now(timezone.utc) - timedelta(hours=1))
    yield "jira replayed (old timestamp)", "jira", old, {"X-Hub-Signature": jira_signature(JIRA_SECRET, old)}, 401, "stale"
    yield "jira webhook sent to the zendesk endpoint", "zendesk", jira_body(), {"X-Hub-Signature": jira_signature(JIRA_SECRET, jira_body())}, 401, "unsigned"
    yield "azure devops no credentials", "azure_devops", ado_body(), {}, 401, "unsigned"
    yield "azure devops wrong password", "azure_devops", ado_body(), {"Authorization": basic("hook", "nope")}, 401, "bad-signature"
    big = b'{"ticket_id": "7", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    yield "zendesk 10 MB body", "zendesk", *zendesk_request(big), 413, "oversized"
    yield "tracker without a webhook secret", "jira_unsigned", jira_body(), {"X-Hub-Signature": jira_signature(JIRA_SECRET, jira_body())}, 404, "not-configured"


@pytest.mark.parametrize("case", list(forged_cases()), ids=lambda c: c[0])
def test_forged_requests_are_refused_counted_and_queue_nothing(daemon, case):
    address, hints, metrics = daemon
    _name, tracker, body, headers, status, reason = case
    reply = requests.post(f"{address}/webhooks/{tracker}", data=body, headers=headers, timeout=30)
    assert reply.status_code == status
    assert ZD_SECRET not in reply.text and JIRA_SECRET not in reply.text
    assert hints.depth() == 0
    assert metrics.webhooks.labels(tracker, reason)._value.get() == 1


def test_genuine_requests_of_each_vendor_are_accepted(daemon):
    address, hints, _metrics = daemon
    body, headers = zendesk_request(b'{"ticket_id": "7"}')
    assert requests.post(f"{address}/webhooks/zendesk", data=body, headers=headers).status_code == 202
    body = jira_body("ENG-9")
    assert requests.post(f"{address}/webhooks/jira", data=body,
                         headers={"X-Hub-Signature": jira_signature(JIRA_SECRET, body)}).status_code == 202
    assert requests.post(f"{address}/webhooks/azure_devops", data=ado_body(42),
                         headers={"Authorization": basic("hook", "pw-1")}).status_code == 202
    assert hints.take() == {"zendesk": ["7"], "jira": ["ENG-9"], "azure_devops": ["42"]}


def test_get_and_unknown_trackers_are_not_webhooks(daemon):
    address, _hints, _metrics = daemon
    assert requests.get(f"{address}/webhooks/zendesk").status_code == 405
    assert requests.post(f"{address}/webhooks/nosuch", data=b"{}").status_code == 404


def test_a_zendesk_or_jira_webhook_section_needs_a_secret(monkeypatch):
    from core.errors import ConfigError
    with pytest.raises(ConfigError, match="needs its signing secret"):
        endpoint_for("zendesk", Tracker("zendesk", {}))
    monkeypatch.delenv("T_UNSET", raising=False)
    with pytest.raises(ConfigError, match="T_UNSET"):
        endpoint_for("jira", Tracker("jira", {"secret_env": "T_UNSET"}))
    with pytest.raises(ConfigError, match="username_env and password_env"):
        endpoint_for("azure_devops", Tracker("azure_devops", {}))


def test_signature_check_runs_before_the_body_is_parsed():
    with pytest.raises(WebhookRejected) as caught:
        verify_zendesk(Secrets(ZD_SECRET), WebhookConfig(), {"X-Zendesk-Webhook-Signature": "x",
                       "X-Zendesk-Webhook-Signature-Timestamp": "2026"}, b"not json", NOW)
    assert caught.value.reason == "bad-signature"


def test_check_names_an_unset_webhook_secret(monkeypatch):
    from pathlib import Path
    from core.config import missing_secrets
    from wiring import load_config
    monkeypatch.delenv("ZENDESK_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("ZENDESK_WEBHOOK_SECRET_FILE", raising=False)
    example = Path(__file__).resolve().parents[1] / "examples" / "tiersync.yaml"
    problems = missing_secrets(load_config(example))
    assert ("trackers.zendesk.webhook.secret_env: environment variable ZENDESK_WEBHOOK_SECRET "
            "is not set") in problems


def test_a_misspelt_webhook_key_is_refused_naming_it(tmp_path):
    from wiring import load_config
    from core.errors import ConfigError
    from pathlib import Path
    example = (Path(__file__).resolve().parents[1] / "examples" / "tiersync.yaml").read_text()
    broken = example.replace("secret_env: ZENDESK_WEBHOOK_SECRET", "secret: inline-secret", 1)
    (tmp_path / "tiersync.yaml").write_text(broken.replace("mapping: ", "mapping: ", 1))
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "tiersync.yaml")
    assert "'webhook.secret' would put a secret" in str(caught.value)
    assert "inline-secret" not in str(caught.value)
