"""Each tracker's user directory, by address (core/people.UserPort).

- Zendesk: Search Users, ``GET /api/v2/users/search?query=<address>`` (zenpy
  ``users.search``), exact ``email`` match; only an active agent or admin can be assigned or
  follow a ticket ("Setting followers": followers must be agents), so an end user counts as
  "not an agent". A suspended or inactive user is deactivated.
- Jira: ``GET /rest/api/2/user/search?query=<address>``, exact ``emailAddress`` match (a user
  who hides the address is not found by it: the override table names their accountId);
  ``active: false`` is a deactivated account, which Jira refuses as an assignee.
- Azure DevOps: Identities - Read Identities (``searchFilter=General&filterValue=<address>``);
  ``isActive: false`` is a removed or disabled identity. The ref is the identity's unique name,
  which ``System.AssignedTo`` takes.
"""
from __future__ import annotations

from typing import Any

from connectors.azure_devops_view import IDENTITY_FIELDS
from core.people import TrackerUser


def _same(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.casefold() == b.casefold()


class ZendeskUsers:
    @staticmethod
    def is_user_field(path: str) -> bool:
        return path == "assignee.email"

    def find_user(self, address: str) -> TrackerUser | None:
        found = self._retry(lambda: self.client.call(  # type: ignore[attr-defined]
            lambda: [u.to_dict() for u in self.client.zenpy.users.search(query=address)]),  # type: ignore[attr-defined]
            "search users")
        user = next((u for u in found if _same(u.get("email"), address)), None)
        if user is None:
            return None
        active = bool(user.get("active", True)) and not user.get("suspended")
        agent = user.get("role") in ("agent", "admin")
        why = None if active and agent else ("deactivated" if not active else "not an agent")
        return TrackerUser(ref=str(user["email"]), display_name=user.get("name"),
                           active=active and agent, why_not=why)


class JiraUsers:
    @staticmethod
    def is_user_field(path: str) -> bool:
        return path in ("assignee", "reporter")

    def find_user(self, address: str) -> TrackerUser | None:
        found = self.api.retrying("find user", lambda: self.api.get_json(  # type: ignore[attr-defined]
            "user/search", {"query": address}))
        user = next((u for u in found or [] if _same(u.get("emailAddress"), address)), None)
        if user is None:
            return None
        return TrackerUser(ref=str(user["accountId"]), display_name=user.get("displayName"),
                           active=bool(user.get("active", True)))


class AzureDevOpsUsers:
    @staticmethod
    def is_user_field(path: str) -> bool:
        return path in IDENTITY_FIELDS

    def find_user(self, address: str) -> TrackerUser | None:
        found = self._retry(lambda: self.mentions.api.read_identities(  # type: ignore[attr-defined]
            search_filter="General", filter_value=address), "read identities")
        for identity in found or []:
            unique = _unique_name(identity) or address
            if not (_same(unique, address) or _same(_mail(identity), address)):
                continue
            return TrackerUser(ref=unique, display_name=identity.provider_display_name,
                               active=identity.is_active is not False)
        return None


def _prop(identity: Any, name: str) -> Any:
    value = (identity.properties or {}).get(name) if identity.properties else None
    return value.get("$value") if isinstance(value, dict) else value


def _unique_name(identity: Any) -> str | None:
    return _prop(identity, "Account")


def _mail(identity: Any) -> str | None:
    return _prop(identity, "Mail")
