"""Writes to Jira: create (idempotent), edit with an expected version, transitions, comments.

Writes whose outcome is unknown (timeout, dropped connection, 5xx) are never resent blindly:
a create is resent only after the search by idempotency key found nothing, a comment only after
re-reading the issue's comments found none carrying this write's nonce. A 429 means Jira did
not process the request, so it is resent after the wait Jira asked for.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from core.connector import OriginRef
from connectors.jira_cursor import parse_jira_time
from connectors.jira_links import origin_marker
from connectors.jira_view import api_fields
from connectors.jira_workflow import MAX_STEPS, Position, target_is
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
        """Create the issue; returns its id. After a lost reply the issue is looked up by its
        idempotency key only once the search index has caught up (``search_lag_seconds`` after
        the send): before that, "not found" proves nothing and a resend could duplicate it."""
        body = self._create_body(fields, key, origin)
        ended_at: list[float] = []  # when the last attempt's outcome became unknown

        def already() -> str | None:
            # the index shows an issue ``lag`` after its last write, which is no later than
            # the moment its attempt failed (not the moment it was sent: Jira may take its
            # time processing it); core/create_lag.py
            wait = self.config.search_lag_seconds - (time.monotonic() - ended_at[-1])
            if wait > 0:
                log.info("%s: create reply lost; waiting %.1fs for Jira's search index before "
                         "looking it up", self.c.name, wait)
                time.sleep(wait)
            found = self.c.find_by_idempotency_key(key)
            return found.id if found is not None else None

        keys: dict[str, str] = {}

        def send() -> str:
            try:
                reply = self.api.post_json("issue", body)
                keys[str(reply["id"])] = str(reply.get("key") or reply["id"])
                return str(reply["id"])
            finally:
                ended_at.append(time.monotonic())

        issue_id = self._unknown_outcome_safe("create issue", send, already)
        marker = body["properties"][0]["value"]
        if marker.get("origin_url"):
            if self.c.links.link(issue_id, marker, fresh=True):
                marker = {**marker, "linked": True}
        elif origin is not None:
            log.info("%s: origin %s:%s has no URL; no remote link on %s", self.c.name,
                     origin.tracker, origin.remote_id, issue_id)
        if fields.get("status") not in (None, ""):
            try:
                self._first_status(issue_id, keys.get(issue_id), body, marker, str(fields["status"]))
            except ConnectorError as exc:  # the issue exists: report it, the next update retries
                log.warning("%s: created %s but could not move it to %r: %s", self.c.name,
                            issue_id, fields["status"], exc)
        return issue_id

    def _first_status(self, issue_id: str, key: str | None, body: dict[str, Any],
                      marker: dict[str, Any], wanted: str) -> None:
        """Walk a new issue to its first status: from where its kind starts, as learned from the
        first one (no read), else from a read of it."""
        created = (str(body["fields"]["project"]["key"]), str(body["fields"]["issuetype"]["name"]))
        guess = None if key is None else self.c.walker.created(
            created, issue_id, key, {self.config.property_key: marker})
        if guess is not None:
            self.transition(issue_id, wanted, known=guess, guessed=True)
            return
        issue = self._read_issue(issue_id)
        self.c.walker.remember_initial(created, issue)
        self.transition(issue_id, wanted, known=issue)

    def _create_body(self, fields: dict[str, Any], key: str, origin: OriginRef | None) -> dict[str, Any]:
        api = api_fields(fields, self.c.catalog, self.account_id)
        api["project"] = {"key": str(fields.get("project") or self.config.project)}
        api["issuetype"] = {"name": str(fields.get("issuetype") or self.config.issue_type)}
        if self.config.idempotency_lookup == "label":
            api["labels"] = list(api.get("labels") or []) + [self.c.marker_label(key)]
        marker: dict[str, Any] = {"key": key, **(origin_marker(origin) if origin else {})}
        return {"fields": api, "properties": [{"key": self.config.property_key, "value": marker}]}

    # -- update ---------------------------------------------------------------------------------
    def update(self, key: str, fields: dict[str, Any], expected_version: str | None) -> None:
        edit = api_fields(fields, self.c.catalog, self.account_id)
        read: list[dict[str, Any]] = []  # the issue as read before the edit
        if edit:
            def attempt() -> None:
                read[:] = [self._read_issue(key)]
                if expected_version is not None:
                    self._check_version(key, read[0]["fields"], expected_version)
                self.api.call(f"edit {key}", lambda: self.api.put_json(f"issue/{key}", {"fields": edit}))
            self._retry(f"edit {key}", attempt)
        if fields.get("status") not in (None, ""):
            # an edit leaves the status and the walk mark as read before it: the walk starts
            # from that read instead of reading the issue again
            self.transition(key, str(fields["status"]), None if edit else expected_version,
                            known=read[0] if read else None)

    def _read(self, key: str) -> dict[str, Any]:
        """The issue's status, ``updated``, project and type, read right before a write."""
        return self._read_issue(key)["fields"]

    def _read_issue(self, ref: str) -> dict[str, Any]:
        """The issue's write facts and, in the same read, the transitions its status offers
        (Get issue ``expand=transitions.fields``), so a walk step needs no transitions read."""
        return self.api.call(f"read {ref}", lambda: self.api.get_json(
            f"issue/{ref}", {"fields": "status,updated,project,issuetype",
                             "properties": self.config.property_key,
                             "expand": "transitions.fields"}))

    def _check_version(self, key: str, current: dict[str, Any], expected: str | None) -> None:
        if expected is not None and _instant(current["updated"]) != _instant(expected):
            raise Conflict(f"issue {key} changed: it is at {current['updated']}, not {expected}",
                           tracker=self.c.name, status=409)

    def transition(self, key: str, wanted: str, expected_version: str | None = None,
                   known: dict[str, Any] | None = None, guessed: bool = False) -> None:
        """Move the issue to status ``wanted`` (name or id), through several transitions when
        there is no direct one (``jira_workflow``); no call when it is already there. Each try
        re-reads the status first, so a transition whose reply was lost is not repeated.

        While a walk passes through other statuses, the ``tiersync`` property holds ``walking:
        {from, from_category, to}``; reading the issue then shows the status it came from, so an
        interrupted walk (a kill, a retry later) never reads as a change made in Jira. The mark
        goes when the wanted status is reached.

        ``known``: the issue as read just before (by the edit of the same update), used for the
        first step of the first try; ``guessed``: not read but expected (a just-created issue).
        A transition Jira accepted whose target is ``wanted`` ends the walk without reading the
        issue again (the accepted transition is where it is now); one on the way leaves the issue
        at its target, whose transitions the walker knows once any issue there was read: the next
        step then needs no read either. A step taken from such an expectation that Jira refuses
        (or that the expectation cannot make) is taken again from a read of the issue."""
        moved = [False]  # a transition went through (kept across tries: no version check then)
        first = [(known, guessed)] if known is not None else []

        def attempt() -> None:
            visited: set[str] = set()
            expected = list(first)
            first.clear()
            for _ in range(MAX_STEPS):
                issue, guess = expected.pop() if expected else (self._read_issue(key), False)
                try:
                    done, after = self._step(key, wanted, issue, visited,
                                             None if moved[0] else expected_version, guess, moved)
                except PermanentError:
                    if not guess:
                        raise
                    log.info("%s: %s was not where the walk expected it; reading it",
                             self.c.name, key)
                    continue
                if done:
                    return
                if after is not None and after[1] is not None:
                    expected.append((after[1], True))
            raise PermanentError(f"issue {key}: {wanted!r} not reached after {MAX_STEPS} "
                                 f"transitions", tracker=self.c.name)
        self._retry(f"transition {key} to {wanted}", attempt)

    def _step(self, key: str, wanted: str, issue: dict[str, Any], visited: set[str],
              expected_version: str | None, guess: bool,
              moved: list[bool]) -> tuple[bool, tuple[dict, dict | None] | None]:
        """One step of a walk from ``issue``: (arrived, None) when it is at ``wanted``, else
        (arrived, (transition taken, the issue as it left it or None when unknown)); sets
        ``moved`` once Jira accepted a transition."""
        at, label = Position.of(issue["fields"]), str(issue.get("key") or key)
        marker = dict((issue.get("properties") or {}).get(self.config.property_key) or {})
        if at.is_(wanted):
            self._mark_walk(key, marker, None)
            return True, None
        self._check_version(label, issue["fields"], expected_version)
        visited.add(at.status_name)
        choice = self.c.walker.step(key, label, at, wanted, visited, issue.get("transitions"))
        body: dict[str, Any] = {"transition": {"id": str(choice["id"])}}
        fields = self.c.walker.screen_fields(label, at, choice, wanted, self.account_id)
        if fields:
            body["fields"] = fields
        origin = _walk_origin(marker, at)
        last_from_start = target_is(choice, wanted) and origin["from"] == at.status_name
        before = marker.get("walking")
        marker = self._mark_walk(key, marker, None if last_from_start else {**origin, "to": wanted})
        try:
            self.api.call(f"transition {label}", lambda: self.api.post_json(
                f"issue/{key}/transitions", body))
        except PermanentError:
            if guess:  # not where the walk expected it: the mark must not name a guessed origin
                self._mark_walk(key, marker, before)
            raise
        moved[0] = True
        if target_is(choice, wanted):
            self._mark_walk(key, marker, None)
            return True, (choice, None)
        return False, (choice, self.c.walker.after(issue, choice, {self.config.property_key: marker}))

    def _mark_walk(self, key: str, marker: dict[str, Any],
                   walking: dict[str, Any] | None) -> dict[str, Any]:
        """Set (or, with None, clear) the ``walking`` mark of the issue's ``tiersync`` property;
        returns the property as it is now."""
        if marker.get("walking") == walking:
            return marker
        value = {k: v for k, v in marker.items() if k != "walking"}
        if walking is not None:
            value["walking"] = walking
        self.api.call(f"mark the walk of {key}", lambda: self.api.client.add_issue_property(
            key, self.config.property_key, value))
        return value

    # -- comments -------------------------------------------------------------------------------
    def add_comment(self, key: str, body: str, public: bool) -> str:
        """An internal note always carries ``sd.public.comment = {"internal": true}``: in a Jira
        Service Management project that keeps it from the customer whatever the configuration
        says; in a software project the property does nothing (every comment is internal)."""
        if public and not self.c.is_service_desk_issue(key):
            raise PermanentError(f"issue {key}: public comments need a Jira Service Management "
                                 f"project", tracker=self.c.name)
        nonce = uuid.uuid4().hex
        properties = [{"key": self.config.property_key, "value": {"nonce": nonce}}]
        if not public:
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


def _walk_origin(marker: dict[str, Any], at: Position) -> dict[str, Any]:
    """Where an unfinished walk started (kept across tries), else the current status (also when
    the mark is left from a walk that arrived: the issue is at its ``to``)."""
    walking = marker.get("walking") or {}
    if walking.get("from") and not at.is_(str(walking.get("to", ""))):
        return {"from": walking["from"], "from_category": walking.get("from_category")}
    return {"from": at.status_name, "from_category": at.category}
