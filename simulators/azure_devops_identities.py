"""Identities and @mentions of the simulated Azure DevOps organization.

- ``GET {org}/_apis/identities?searchFilter=General&filterValue=<address>`` (Identities - Read
  Identities, learn.microsoft.com/rest/api/azure/devops/ims/identities/read-identities; IMS area,
  location 28010c54-d0c0-4c89-a5b0-1c9e188b9fb7): ``{count, value: [Identity]}``, matching the
  address or display name exactly (case-insensitive); ``searchFilter`` must be one of the
  documented ones; an unknown address gives an empty list.
- A comment (Comments - Add, or a ``System.History`` value) with
  ``data-vss-mention="version:2.0,<id>"`` anchors mentions those identities ("Use @mentions in
  work items"); Azure DevOps notifies them, except for a work item update sent with
  ``suppressNotifications=true``. The simulator records each notification it would send.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

from simulators.azure_devops_types import SimError

IDENTITY_LOCATION = {
    "id": "28010c54-d0c0-4c89-a5b0-1c9e188b9fb7", "area": "IMS", "resourceName": "Identities",
    "routeTemplate": "_apis/{resource}/{identityId}", "resourceVersion": 1, "minVersion": "1.0",
    "maxVersion": "7.1", "releasedVersion": "0.0"}
SEARCH_FILTERS = ("General", "AccountName", "DisplayName", "MailAddress")
MENTION = re.compile(r'data-vss-mention="version:2\.0,([0-9a-fA-F-]+)"')


def identity_id(unique_name: str) -> str:
    """The id the simulator gives a user (the IdentityRef ``id`` of azure_devops_store)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, unique_name.lower()))


def read_identities(users: dict[str, dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
    search = params.get("searchFilter")
    if search is not None and search not in SEARCH_FILTERS:
        raise SimError(400, f"Invalid search filter: {search}", "ArgumentException")
    wanted = (params.get("filterValue") or "").strip().lower()
    seen, found = set(), []
    for key, user in users.items():
        if wanted and key == wanted and user["uniqueName"] not in seen:
            seen.add(user["uniqueName"])
            found.append(_identity(user))
    return {"count": len(found), "value": found}


def _identity(user: dict[str, Any]) -> dict[str, Any]:
    ident = identity_id(user["uniqueName"])
    return {"id": ident, "descriptor": f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{user['uniqueName']}",
            "subjectDescriptor": f"aad.{ident}", "providerDisplayName": user["displayName"],
            "isActive": user.get("active", True) is not False, "isContainer": False, "members": [], "memberOf": [],
            "properties": {"Account": {"$type": "System.String", "$value": user["uniqueName"]},
                           "Mail": {"$type": "System.String", "$value": user["uniqueName"]}}}


def mentions(text: Any) -> list[str]:
    return MENTION.findall(text) if isinstance(text, str) else []


def as_history(body: Any) -> list[dict[str, Any]]:
    """A Comments - Add body as the ``System.History`` patch it amounts to."""
    text = body.get("text") if isinstance(body, dict) else None
    return [{"op": "add", "path": "/fields/System.History", "value": text}]


def notifications(item_id: str, params: dict[str, str], body: Any) -> list[dict[str, Any]]:
    """The mention notifications one work item update sends."""
    if str(params.get("suppressNotifications", "")).lower() == "true" or not isinstance(body, list):
        return []
    sent = []
    for op in body:
        if isinstance(op, dict) and str(op.get("path", "")).lower() == "/fields/system.history":
            sent += [{"work_item": int(item_id), "identity": ident} for ident in mentions(op.get("value"))]
    return sent
