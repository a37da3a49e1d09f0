"""Writes to Jira: create (idempotent), edit with an expected version, transitions, comments.

Writes whose outcome is unknown (timeout, dropped connection, 5xx) are never resent blindly:
a create is resent only after the search by idempotency key found nothing, a comment only after
re-reading the issue's comments found none carrying this write's nonce. A 429 means Jira did
not process the request, so it is resent after the wait Jira asked for.
"""
from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from connectors.base import OriginRef
from connectors.jira_cursor import parse_jira_time
from connectors.jira_view import api_fields
from connectors.retry import call_with_retry
from core.errors import Conflict, ConnectorError, PermanentError, RateLimited, Retryable, UnknownOutcome

if TYPE_CHECKING:
    from connectors.jira import JiraConnector

log = logging.getLogger("tiersync.connectors.jira")
T = TypeVar("T")
SD_PUBLIC = "sd.public.comment"


class JiraWrites:
    def __init__(self, connector: "JiraConnector"):
        self.c = connector
        self.api = connector.api
        self.config = connector.config
        self._accounts: dict[str, str] = {}

    def _retry(self, what: str, attempt: Callable[[], T]) -> T:
        return call_with_retry(attempt, max_attempts=self.config.max_attempts,
                               max_wait=self.config.max_wait_seconds, what=f"{self.c.name}: {what}")

    def _unknown_outcome_safe(self, what: str, send: Callable[[], T], already: Callable[[], T | None]) -> T:
        """Send a non-idempotent write; after an unknown outcome, resend only if ``already``
        (a read-back) finds nothing."""
        maybe_sent = False

        def attempt() -> T:
            nonlocal maybe_sent
            if maybe_sent:
                done = already()
                if done is not None:
                    log.info("%s: %s had gone through before the error; not resending",
                             self.c.name, what)
                    return done
            try:
                return self.api.call(what, send)
            except RateLimited:
                raise
            except Retryable:
                maybe_sent = True
                raise

        try:
            return self._retry(what, attempt)
        except Retryable as exc:
            if maybe_sent and not isinstance(exc, (RateLimited, UnknownOutcome)):
                raise UnknownOutcome(f"{what}: outcome unknown after retries: {exc}",
                                     tracker=self.c.name, status=exc.status) from exc
            raise

    # -- create ---------------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], key: str, origin: OriginRef | None) -> str:
        body = self._create_body(fields, key, origin)

        def already() -> str | None:
            found = self.c.find_by_idempotency_key(key)
            return found.id if found is not None else None

        issue_key = self._unknown_outcome_safe(
            "create issue", lambda: self.api.post_json("issue", body)["key"], already)
        if origin is not None:
            self._link_origin(issue_key, origin)
        if fields.get("status") not in (None, ""):
            try:
                self.transition(issue_key, str(fields["status"]))
            except ConnectorError as exc:  # the issue exists: report it, the next update retries
                log.warning("%s: created %s but could not move it to %r: %s", self.c.name,
                            issue_key, fields["status"], exc)
        return issue_key

    def _create_body(self, fields: dict[str, Any], key: str, origin: OriginRef | None) -> dict[str, Any]:
        api = api_fields(fields, self.c.catalog, self.account_id)
        api["project"] = {"key": str(fields.get("project") or self.config.project)}
        api["issuetype"] = {"name": str(fields.get("issuetype") or self.config.issue_type)}
        if self.config.idempotency_lookup == "label":
            api["labels"] = list(api.get("labels") or []) + [self.c.marker_label(key)]
        marker: dict[str, Any] = {"key": key}
        if origin is not None:
            marker["origin"] = f"{origin.tracker}:{origin.remote_id}"
        return {"fields": api, "properties": [{"key": self.config.property_key, "value": marker}]}

    def _link_origin(self, issue_key: str, origin: OriginRef) -> None:
        """Remote link back to the origin record; upserted by globalId, so safe to repeat."""
        if not origin.url:
            log.info("%s: origin %s:%s has no URL; no remote link on %s", self.c.name,
                     origin.tracker, origin.remote_id, issue_key)
            return
        title = origin.title or f"{origin.tracker} {origin.remote_id}"
        try:
            self.api.retrying(f"link {issue_key} to its origin", lambda: self.api.client.add_remote_link(
                issue_key, {"url": origin.url, "title": title[:255]},
                globalId=f"tiersync:{origin.tracker}:{origin.remote_id}",
                application={"type": "tiersync", "name": "tiersync"}, relationship="escalated from"))
        except ConnectorError as exc:  # the issue exists; a missing back link must not undo that
            log.warning("%s: created %s but could not add the remote link to %s:%s: %s",
                        self.c.name, issue_key, origin.tracker, origin.remote_id, exc)

    # -- update ---------------------------------------------------------------------------------
    def update(self, key: str, fields: dict[str, Any], expected_version: str | None) -> None:
        edit = api_fields(fields, self.c.catalog, self.account_id)
        if edit:
            def attempt() -> None:
                if expected_version is not None:
                    self._check_version(key, self._read(key), expected_version)
                self.api.call(f"edit {key}", lambda: self.api.put_json(f"issue/{key}", {"fields": edit}))
            self._retry(f"edit {key}", attempt)
        if fields.get("status") not in (None, ""):
            self.transition(key, str(fields["status"]), None if edit else expected_version)

    def _read(self, key: str) -> dict[str, Any]:
        """The issue's status and ``updated``, read right before a write."""
        return self.api.call(f"read {key}", lambda: self.api.get_json(
            f"issue/{key}", {"fields": "status,updated"}))["fields"]

    def _check_version(self, key: str, current: dict[str, Any], expected: str | None) -> None:
        if expected is not None and _instant(current["updated"]) != _instant(expected):
            raise Conflict(f"issue {key} changed: it is at {current['updated']}, not {expected}",
                           tracker=self.c.name, status=409)

    def transition(self, key: str, wanted: str, expected_version: str | None = None) -> None:
        """Move the issue to status ``wanted`` (name or id); no call when it is already there."""
        def attempt() -> None:
            current = self._read(key)
            status = current.get("status") or {}
            if wanted.lower() in (str(status.get("name", "")).lower(), str(status.get("id", ""))):
                return
            self._check_version(key, current, expected_version)
            transitions = self.api.call(f"list transitions of {key}",
                                        lambda: self.api.client.transitions(key))
            choice = _pick(transitions, wanted)
            if choice is None:
                raise PermanentError(
                    f"issue {key}: no workflow transition from {status.get('name')!r} to "
                    f"{wanted!r}; available: {', '.join(_describe(t) for t in transitions) or 'none'}",
                    tracker=self.c.name)
            self.api.call(f"transition {key}", lambda: self.api.post_json(
                f"issue/{key}/transitions", {"transition": {"id": str(choice["id"])}}))
        self._retry(f"transition {key} to {wanted}", attempt)

    # -- comments -------------------------------------------------------------------------------
    def add_comment(self, key: str, body: str, public: bool) -> str:
        if public and not self.config.service_management:
            raise PermanentError("public comments need Jira Service Management (set "
                                 "service_management: true for a JSM project)", tracker=self.c.name)
        nonce = uuid.uuid4().hex
        properties = [{"key": self.config.property_key, "value": {"nonce": nonce}}]
        if self.config.service_management and not public:
            properties.append({"key": SD_PUBLIC, "value": {"internal": True}})
        payload = {"body": body, "properties": properties}

        def already() -> str | None:
            for comment in self.c.list_comments(key):
                for prop in comment.get("properties") or []:
                    if prop.get("key") == self.config.property_key and \
                            (prop.get("value") or {}).get("nonce") == nonce:
                        return str(comment["id"])
            return None

        return self._unknown_outcome_safe(
            f"comment on {key}", lambda: str(self.api.post_json(f"issue/{key}/comment", payload)["id"]),
            already)

    # -- users ----------------------------------------------------------------------------------
    def account_id(self, user: str) -> str:
        """An accountId for an email address (user search) or an accountId given as is."""
        if "@" not in user:
            return user
        if user.lower() not in self._accounts:
            found = self.api.retrying("find user", lambda: self.api.get_json("user/search", {"query": user}))
            exact = [u for u in found or [] if str(u.get("emailAddress", "")).lower() == user.lower()]
            if not exact:
                raise PermanentError(f"no Jira user with email {user}", tracker=self.c.name)
            self._accounts[user.lower()] = exact[0]["accountId"]
        return self._accounts[user.lower()]


def _instant(version: str) -> Any:
    try:
        return parse_jira_time(version)
    except ValueError:
        return version


def _pick(transitions: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    by_id = [t for t in transitions if str((t.get("to") or {}).get("id")) == wanted]
    by_name = [t for t in transitions if str((t.get("to") or {}).get("name", "")).lower() == wanted.lower()]
    return (by_id or by_name or [None])[0]


def _describe(transition: dict[str, Any]) -> str:
    return f"{transition.get('name')} -> {(transition.get('to') or {}).get('name')}"
