"""People across trackers: an address becomes each tracker's user, and back.

The policy's ``Directory`` (core/policy/people.py) turns an audience into addresses; this one
turns an address into the user a tracker knows (a Zendesk agent's address, a Jira accountId,
an Azure DevOps identity's unique name), for assignee, original owner, requester alias and the
people a note notifies.

Rules:
- A value that is not an address (an accountId, a name) is passed on as it is.
- The tracker section's ``people`` table wins (people whose address is hidden or differs
  there); then the store's cache (``people_cache``, ``people_cache_seconds``, default a day;
  people not found are asked again after a tenth of that); then the tracker's own directory
  (``find_user``: Zendesk users search, Jira ``user/search``, Azure DevOps identities).
- A person not found, or deactivated, is ``None``: the caller leaves the field unset and says
  so in an internal note (core/people_connector.py); nothing is quarantined. A lookup that
  fails on a transient error (timeout, 5xx, 429) raises it: the write is retried later, never
  sent without the person.
- Reading, a tracker's user id maps back to the address through the same table and cache.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol, runtime_checkable

from sqlalchemy.exc import OperationalError

from core import files_store as fs
from core.errors import ConnectorError, Retryable

log = logging.getLogger("tiersync.people")
FOUND, MISSING, INACTIVE = "found", "missing", "inactive"


@dataclass(frozen=True)
class TrackerUser:
    ref: str  # what the tracker's fields take: address, accountId or unique name
    display_name: str | None = None
    active: bool = True
    why_not: str | None = None  # e.g. "not an agent" (a Zendesk end user)


@runtime_checkable
class UserPort(Protocol):
    def find_user(self, address: str) -> TrackerUser | None:
        """The tracker's user with this address, or None (hidden or unknown)."""
        ...


@dataclass(frozen=True)
class Lookup:
    address: str
    ref: str | None
    state: str  # found | missing | inactive
    why: str | None = None

    @property
    def found(self) -> bool:
        return self.state == FOUND


def is_address(value: Any) -> bool:
    return isinstance(value, str) and "@" in value and " " not in value.strip()


class PeopleDirectory:
    """One tracker's directory (overrides, store cache, the tracker's own lookup)."""

    def __init__(self, tracker: str, connector: Any, store: Any, *,
                 clock: Callable[[], datetime]):
        self.tracker = tracker
        self.connector = connector
        self.store = store
        self.clock = clock
        config = connector.config
        self.overrides = {k.casefold(): str(v) for k, v in (getattr(config, "people", None) or {}).items()}
        self.ttl = timedelta(seconds=float(getattr(config, "people_cache_seconds", 86400.0)))
        self._memory: dict[str, Lookup] = {}
        self._reverse: dict[str, str] = {}  # user id -> address, read from the cache

    def lookup(self, address: str) -> Lookup:
        key = address.strip().casefold()
        if key in self.overrides:
            return Lookup(address, self.overrides[key], FOUND, "override")
        if key not in self._memory:
            found = self._cached(key) or self._ask(key)
            if found.why is not None and found.why.startswith("the lookup failed"):
                return found  # not remembered: asked again next time
            self._memory[key] = found
        return self._memory[key]

    def ref_for(self, value: Any) -> str | None:
        """The tracker's user for ``value`` (an address), the value itself when not an address,
        None when the person is not (or no longer) a user there."""
        if not is_address(value):
            return value
        return self.lookup(str(value)).ref

    def address_of(self, ref: Any) -> Any:
        """The address of a tracker user id (reading); the value itself when unknown."""
        if not isinstance(ref, str) or is_address(ref) or not ref:
            return ref
        for address, override in self.overrides.items():
            if override == ref:
                return address
        if " " in ref.strip():  # a display name, not a user id
            return ref
        if ref not in self._reverse:
            try:
                with self.store.transaction() as tx:
                    self._reverse[ref] = fs.address_for(tx, self.tracker, ref) or ref
            except OperationalError:
                return ref
        return self._reverse[ref]

    def _cached(self, key: str) -> Lookup | None:
        try:
            with self.store.transaction() as tx:
                row = fs.cached_person(tx, self.tracker, key)
        except OperationalError:
            return None
        if row is None:
            return None
        ttl = self.ttl if row.state == FOUND else self.ttl / 10
        if row.fetched_at < self.clock() - ttl:
            return None
        return Lookup(key, row.ref if row.state == FOUND else None, row.state, row.display_name)

    def _ask(self, key: str) -> Lookup:
        if not isinstance(self.connector, UserPort):
            return Lookup(key, key, FOUND, "passed on: the tracker has no user directory")
        try:
            user = self.connector.find_user(key)
        except Retryable:
            raise  # the tracker is busy or unreachable: the write waits and asks again
        except ConnectorError as exc:  # refused for good: not cached, asked again next time
            log.warning("%s: cannot look %s up: %s", self.tracker, key, exc)
            return Lookup(key, None, MISSING, f"the lookup failed: {exc}")
        if user is None:
            found = Lookup(key, None, MISSING, None)
        elif not user.active:
            found = Lookup(key, None, INACTIVE, user.why_not or "deactivated")
        else:
            found = Lookup(key, user.ref, FOUND, user.display_name)
        self._remember(found)
        return found

    def _remember(self, found: Lookup) -> None:
        try:
            with self.store.transaction() as tx:
                fs.cache_person(tx, self.tracker, found.address, found.ref, found.why,
                                found.state, self.clock())
        except OperationalError as exc:  # the store is busy (a write in progress): memory only
            log.debug("%s: people cache not written: %s", self.tracker, exc)


def missing_text(tracker: str, field: str, found: Lookup) -> str:
    """The internal note naming who could not be found and what to do."""
    why = {MISSING: f"is not a {tracker} user tiersync can find by that address (or the address "
                    f"is hidden)", INACTIVE: f"is {found.why or 'deactivated'} in {tracker}"}
    return (f"tiersync could not set {field} to {found.address}: this person "
            f"{why.get(found.state, 'could not be looked up')}. The field is left unset. If they "
            f"use another address or hide it in {tracker}, add them to trackers.{tracker}.people "
            f"in the tiersync configuration.")
