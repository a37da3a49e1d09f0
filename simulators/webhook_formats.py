"""What each vendor's webhook looks like on the wire: body, headers and signature.

- Zendesk: trigger/automation webhooks carry the JSON body the admin wrote (by convention
  ``{"ticket_id": "{{ticket.id}}"}``); event webhooks carry ``type`` ``zen:event-type:ticket.*``
  and ``detail.id`` (developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/).
  Signed with base64(HMAC-SHA256(secret, timestamp + body)) in ``X-Zendesk-Webhook-Signature``,
  the timestamp in ``X-Zendesk-Webhook-Signature-Timestamp``
  (developer.zendesk.com/documentation/webhooks/verifying/).
- Jira Cloud admin webhooks: ``webhookEvent`` ``jira:issue_created``/``jira:issue_updated`` with
  ``timestamp`` (ms) and ``issue {id, key, self, fields}``; with a secret, signed
  ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>``
  (developer.atlassian.com/cloud/jira/platform/webhooks/, "Secure admin webhooks").
- Azure DevOps service hooks (Web Hooks consumer): ``eventType`` ``workitem.created`` (resource =
  the work item) / ``workitem.updated`` and ``workitem.commented`` (resource = the update, with
  ``workItemId``), ``createdDate``; authenticated by basic auth and/or custom HTTP headers set on
  the subscription (learn.microsoft.com/azure/devops/service-hooks/services/webhooks,
  learn.microsoft.com/azure/devops/service-hooks/events).
This module imports nothing from tiersync: the simulators stand in for the vendors.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone
from typing import Any

Event = dict[str, Any]  # {"id", "key", "created": bool, "kind": "updated"|"commented", "url"}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def zendesk(event: Event, target: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    if target.get("zendesk_style") == "event":
        kind = "created" if event["created"] else (
            "comment_added" if event["kind"] == "commented" else "status_changed")
        payload = {"type": f"zen:event-type:ticket.{kind}", "id": str(uuid.uuid4()),
                   "subject": f"zen:ticket:{event['id']}", "time": _iso(_now()),
                   "zendesk_event_version": "2022-11-06",
                   "detail": {"id": str(event["id"])}, "event": {}}
    else:
        payload = {"ticket_id": str(event["id"]), "ticket_url": event.get("url")}
    body = json.dumps(payload).encode()
    stamp = target.get("timestamp") or _iso(_now())
    headers = {"Content-Type": "application/json", "User-Agent": "Zendesk Webhook",
               "X-Zendesk-Webhook-Id": target.get("webhook_id", "01SIMWEBHOOK"),
               "X-Zendesk-Webhook-Invocation-Id": str(uuid.uuid4().int)[:12]}
    if target.get("secret"):
        digest = hmac.new(target["secret"].encode(), stamp.encode() + body, hashlib.sha256).digest()
        headers["X-Zendesk-Webhook-Signature"] = base64.b64encode(digest).decode()
        headers["X-Zendesk-Webhook-Signature-Timestamp"] = stamp
    return body, headers


def jira(event: Event, target: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    name = "jira:issue_created" if event["created"] else "jira:issue_updated"
    payload = {"timestamp": int(_now().timestamp() * 1000), "webhookEvent": name,
               "issue_event_type_name": "issue_created" if event["created"] else (
                   "issue_commented" if event["kind"] == "commented" else "issue_generic"),
               "issue": {"id": str(event["numeric_id"]), "key": event["id"],
                         "self": event.get("url"), "fields": {}}}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json",
               "X-Atlassian-Webhook-Identifier": str(uuid.uuid4().int)[:10],
               "X-Atlassian-Webhook-Flow": "Primary"}
    if target.get("secret"):
        headers["X-Hub-Signature"] = "sha256=" + hmac.new(
            target["secret"].encode(), body, hashlib.sha256).hexdigest()
    return body, headers


def azure_devops(event: Event, target: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    if event["created"]:
        kind, resource = "workitem.created", {"id": int(event["id"]), "rev": event["rev"],
                                              "url": event.get("url"), "fields": {}}
    else:
        kind = "workitem.commented" if event["kind"] == "commented" else "workitem.updated"
        resource = {"id": event["rev"], "workItemId": int(event["id"]), "rev": event["rev"],
                    "url": event.get("url"), "fields": {}}
    payload = {"subscriptionId": target.get("subscription_id", str(uuid.uuid4())),
               "notificationId": event.get("sequence", 1), "id": str(uuid.uuid4()),
               "eventType": kind, "publisherId": "tfs",
               "message": {"text": f"Work item {event['id']} {kind.split('.')[1]}"},
               "resource": resource, "resourceVersion": "1.0",
               "createdDate": _now().isoformat().replace("+00:00", "Z")}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if target.get("username") is not None:
        pair = f"{target['username']}:{target.get('password') or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    for name, value in (target.get("headers") or {}).items():
        headers[name] = value
    return body, headers


FORMATS = {"zendesk": zendesk, "jira": jira, "azure_devops": azure_devops}
