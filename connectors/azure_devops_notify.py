"""Notifying people in Azure DevOps: @mentions in the discussion.

A mention is the HTML the web UI writes, ``<a href="#" data-vss-mention="version:2.0,{id}">@Name
</a>`` (learn.microsoft.com, "Use @mentions in work items and pull requests"; the id is the
identity's id), in the comment (Comments - Add), so Azure DevOps notifies the people mentioned. Identities are found by address with the Identities
API (``GET {vssps}/_apis/identities?searchFilter=General&filterValue=<address>``, IMS area,
location 28010c54-d0c0-4c89-a5b0-1c9e188b9fb7), on ``vssps.dev.azure.com/{organization}`` for
``dev.azure.com/{organization}`` (``identity_url`` overrides it). Someone not found is named in
plain text and logged; the comment is still written.
"""
from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from azure.devops.v7_1.identity import IdentityClient
from msrest.authentication import BasicAuthentication

from msrest.exceptions import ClientRequestError

from connectors.azure_devops_client import _disable_retries, http_error, transport_error
from core.errors import ConnectorError

log = logging.getLogger("tiersync.azure_devops")


def identity_base(base_url: str, override: str | None = None) -> str:
    """The identity service's URL for an organization URL."""
    if override:
        return override.rstrip("/")
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if host == "dev.azure.com":
        return urlunsplit((parts.scheme, "vssps.dev.azure.com", parts.path, "", "")).rstrip("/")
    if host.endswith(".visualstudio.com"):
        org = host.split(".")[0]
        return urlunsplit((parts.scheme, f"{org}.vssps.visualstudio.com", "", "", "")).rstrip("/")
    return base_url.rstrip("/")  # a server or a simulator serves identities itself


class IdentityApi(IdentityClient):
    """IdentityClient with tiersync's typed errors and no hidden retries."""

    def __init__(self, base_url: str, pat: str, *, tracker: str, credential: str, timeout: float):
        super().__init__(base_url=base_url, creds=BasicAuthentication("", pat))
        self.tracker = tracker
        self.credential = credential
        _disable_retries(self.config.retry_policy.policy)
        self.config.connection.timeout = timeout

    def _handle_error(self, request: Any, response: Any) -> None:
        raise http_error(self.tracker, response, self.credential)

    def _send_request(self, request: Any, headers: Any = None, content: Any = None,
                      media_type: Any = None, **operation_config: Any) -> Any:
        """A dropped connection or a timeout comes out typed (Retryable), as from the work
        item client: msrest's own ClientRequestError would end the daemon."""
        try:
            return super()._send_request(request, headers=headers, content=content,
                                         media_type=media_type, **operation_config)
        except ClientRequestError as exc:
            raise transport_error(self.tracker, exc) from exc


class Mentions:
    """Addresses -> mention HTML, identities cached for the connector's life."""

    def __init__(self, api: IdentityApi, tracker: str):
        self.api = api
        self.tracker = tracker
        self._found: dict[str, tuple[str, str] | None] = {}

    def identity(self, address: str) -> tuple[str, str] | None:
        """(id, display name) of the identity with this address, or None."""
        key = address.casefold()
        if key not in self._found:
            self._found[key] = self._lookup(address)
        return self._found[key]

    def _lookup(self, address: str) -> tuple[str, str] | None:
        try:
            found = self.api.read_identities(search_filter="General", filter_value=address)
        except (ConnectorError, Exception) as exc:  # a lookup must never lose the note
            log.warning("%s: cannot look up %s: %s", self.tracker, address, exc)
            return None
        for identity in found or []:
            if identity.id and getattr(identity, "is_active", True) is not False:
                return str(identity.id), identity.provider_display_name or address
        log.warning("%s: %s is not an Azure DevOps identity; named, not mentioned", self.tracker,
                    address)
        return None

    def html(self, people: tuple[str, ...]) -> tuple[str, bool]:
        """The "Notified:" line, and whether anyone in it is a real mention."""
        parts, mentioned = [], False
        for who in people:
            found = self.identity(who)
            if found is None:
                parts.append(html.escape(who))
                continue
            ident, name = found
            parts.append(f'<a href="#" data-vss-mention="version:2.0,{ident}">@{html.escape(name)}</a>')
            mentioned = True
        return "Notified: " + ", ".join(parts), mentioned
