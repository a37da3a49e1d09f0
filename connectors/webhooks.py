"""Verifying the trackers' webhooks and reading which record they name (never their data).

One verifier per tracker kind, each on the vendor's documented scheme:

- Zendesk: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret, timestamp + raw body)),
  the timestamp in ``X-Zendesk-Webhook-Signature-Timestamp``
  (developer.zendesk.com/documentation/webhooks/verifying/). A timestamp older (or further in
  the future) than ``max_age_seconds`` is a replay.
- Jira Cloud admin webhooks registered with a secret: ``X-Hub-Signature: sha256=<hex>``,
  HMAC-SHA256 of the raw body (developer.atlassian.com/cloud/jira/platform/webhooks/, "Secure
  admin webhooks"). The body's ``timestamp`` (ms, covered by the signature) dates it.
- Azure DevOps service hooks: basic authentication and/or custom HTTP headers set on the
  subscription (learn.microsoft.com/azure/devops/service-hooks/services/webhooks). Neither
  dates the request, so the body's ``createdDate`` is checked for staleness as a best effort.

Comparisons are constant-time. A verifier only says *which* record changed; tiersync then
reads that record through the connector like any polled record.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from core.errors import ConfigError, TiersyncError
from core.secrets import read_secret
from core.webhook_config import WebhookConfig


class WebhookRejected(TiersyncError):
    """A webhook that failed verification; ``reason`` is a short label for the metrics."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(detail)


@dataclass(frozen=True)
class Secrets:
    secret: str | None = None
    username: str | None = None
    password: str | None = None


def load_secrets(tracker: str, config: WebhookConfig, kind: str) -> Secrets:
    """Read the secrets the section names; ConfigError when a kind's required one is not named."""
    def read(variable: str | None, purpose: str) -> str | None:
        return read_secret(variable, tracker=tracker, purpose=purpose) if variable else None
    secrets = Secrets(read(config.secret_env, "the webhook secret"),
                      read(config.username_env, "the webhook user"),
                      read(config.password_env, "the webhook password"))
    if kind == "azure_devops":
        if not secrets.secret and not (secrets.username and secrets.password):
            raise ConfigError(f"trackers.{tracker}.webhook: name secret_env, or username_env and "
                              "password_env, or both")
    elif not secrets.secret:
        raise ConfigError(f"trackers.{tracker}.webhook.secret_env: a {kind} webhook needs its "
                          "signing secret")
    return secrets


def _equal(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, timestamp + body)), as Zendesk signs."""
    return base64.b64encode(_hmac(secret, timestamp.encode() + body)).decode()


def jira_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, body)>``, as Jira Cloud signs admin webhooks."""
    return "sha256=" + _hmac(secret, body).hex()


def _parse_time(value: Any) -> datetime | None:
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
            number = float(value)
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, timezone.utc)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def _fresh(when: datetime | None, now: datetime, max_age: float, what: str) -> None:
    if when is None:
        raise WebhookRejected("stale", f"{what} is missing or unreadable")
    if abs((now - when).total_seconds()) > max_age:
        raise WebhookRejected("stale", f"{what} {when.isoformat()} is more than {max_age:.0f}s "
                              "from now (a replay?)")


def _payload(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("unreadable", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejected("unreadable", "the body is not a JSON object")
    return data


# -- one verifier per kind -------------------------------------------------------------------------
def verify_zendesk(secrets: Secrets, config: WebhookConfig, headers: Mapping[str, str],
                   body: bytes, now: datetime) -> dict[str, Any]:
    signature = headers.get("X-Zendesk-Webhook-Signature")
    timestamp = headers.get("X-Zendesk-Webhook-Signature-Timestamp")
    if not signature or not timestamp:
        raise WebhookRejected("unsigned", "X-Zendesk-Webhook-Signature(-Timestamp) missing")
    if not _equal(signature, zendesk_signature(secrets.secret or "", timestamp, body)):
        raise WebhookRejected("bad-signature", "X-Zendesk-Webhook-Signature does not match")
    _fresh(_parse_time(timestamp), now, config.max_age_seconds, "the signature timestamp")
    return _payload(body)


def verify_jira(secrets: Secrets, config: WebhookConfig, headers: Mapping[str, str],
                body: bytes, now: datetime) -> dict[str, Any]:
    signature = headers.get("X-Hub-Signature")
    if not signature:
        raise WebhookRejected("unsigned", "X-Hub-Signature missing")
    if not _equal(signature, jira_signature(secrets.secret or "", body)):
        raise WebhookRejected("bad-signature", "X-Hub-Signature does not match")
    payload = _payload(body)
    _fresh(_parse_time(payload.get("timestamp")), now, config.max_age_seconds, "the body's timestamp")
    return payload


def verify_azure_devops(secrets: Secrets, config: WebhookConfig, headers: Mapping[str, str],
                        body: bytes, now: datetime) -> dict[str, Any]:
    if secrets.secret is not None and not _equal(headers.get(config.header), secrets.secret):
        raise WebhookRejected("unsigned" if config.header not in headers else "bad-signature",
                              f"header {config.header} missing or wrong")
    if secrets.username is not None:
        expected = "Basic " + base64.b64encode(
            f"{secrets.username}:{secrets.password}".encode()).decode()
        if not _equal(headers.get("Authorization"), expected):
            raise WebhookRejected("unsigned" if "Authorization" not in headers else "bad-signature",
                                  "basic authentication missing or wrong")
    payload = _payload(body)
    _fresh(_parse_time(payload.get("createdDate")), now, config.max_age_seconds, "createdDate")
    return payload


# -- which record a verified payload names ------------------------------------------------------------
def zendesk_ids(payload: dict[str, Any]) -> list[str]:
    """Event webhooks carry ``detail.id`` (zen:event-type:ticket.*); trigger webhooks carry the
    body the admin wrote, by convention ``{"ticket_id": "{{ticket.id}}"}`` or ``ticket.id``."""
    ticket = payload.get("ticket") if isinstance(payload.get("ticket"), dict) else {}
    detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
    found = payload.get("ticket_id") or ticket.get("id") or (
        detail.get("id") if str(payload.get("type", "")).startswith("zen:event-type:ticket") else None)
    return [str(found)] if found is not None and str(found).isdigit() else []


def jira_ids(payload: dict[str, Any]) -> list[str]:
    """``jira:issue_*`` and ``comment_*`` events carry ``issue.key`` (tiersync's Jira id)."""
    issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else {}
    key = issue.get("key")
    return [str(key)] if isinstance(key, str) and key else []


def azure_devops_ids(payload: dict[str, Any]) -> list[str]:
    """``workitem.updated``/``commented`` carry ``resource.workItemId``; ``workitem.created``
    (and restored) carry the work item itself, ``resource.id``."""
    resource = payload.get("resource") if isinstance(payload.get("resource"), dict) else {}
    found = resource.get("workItemId")
    if found is None and payload.get("eventType") in ("workitem.created", "workitem.restored"):
        found = resource.get("id")
    return [str(found)] if found is not None and str(found).isdigit() else []


Verify = Callable[[Secrets, WebhookConfig, Mapping[str, str], bytes, datetime], dict[str, Any]]
VERIFIERS: dict[str, tuple[Verify, Callable[[dict[str, Any]], list[str]]]] = {
    "zendesk": (verify_zendesk, zendesk_ids),
    "jira": (verify_jira, jira_ids),
    "azure_devops": (verify_azure_devops, azure_devops_ids),
}


def endpoint_for(name: str, tracker: Any) -> Any:
    """The listener's endpoint for one configured tracker, or None without a webhook section."""
    from functools import partial

    from core.webhook_route import WebhookEndpoint
    config = getattr(tracker, "webhook", None)
    if config is None:
        return None
    if tracker.kind not in VERIFIERS:
        raise ConfigError(f"trackers.{name}.webhook: {tracker.kind} trackers send no webhooks "
                          f"tiersync can verify (known: {', '.join(sorted(VERIFIERS))})")
    verify, ids = VERIFIERS[tracker.kind]
    secrets = load_secrets(name, config, tracker.kind)
    return WebhookEndpoint(tracker=name, verify=partial(verify, secrets, config), record_ids=ids,
                           max_body_bytes=config.max_body_bytes, rejected=WebhookRejected)
