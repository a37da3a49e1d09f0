"""The remote link from a Jira issue back to its origin record, added at create and repaired.

Rules:
- The issue property ``tiersync`` (set in the same ``POST /issue`` that creates the issue) holds
  ``origin``, ``origin_url``, ``origin_title`` and ``linked: false``. Once the remote link is in
  place (``POST /issue/{id}/remotelink``, upserted by ``globalId`` ``tiersync:<tracker>:<id>``, so
  repeating it never makes a second link) the property is set to ``linked: true``.
- Every issue read (pull, get, idempotency lookup) whose marker says ``linked: false`` is noted;
  ``repair()`` (once per cycle, after the outbox, never in a dry run) re-adds those links and
  marks them. A link missing after a fault at create therefore comes back one cycle later.
- Issues created before this marker (no ``linked`` key) are left alone: their origin URL is not
  recorded, so nothing can be re-added.
- A property write replaces the whole value (REST "Set issue property"), and the same property
  holds a walk's ``walking`` mark (connectors/jira_writes.py). The repair's writes therefore start
  from the property as it is right before them (``GET /issue/{id}/properties/{key}``), never from
  the one read earlier in the cycle: a walk that began since (another daemon's create, the hint
  thread) keeps its mark, and a mark is cleared only if it is still the one that was seen arrived.
  Without that, a repair could drop the mark of a walk under way, and a read of the issue between
  two of its steps showed the status it passed through as a change made in Jira (the
  1,000-escalation chaos run: ``waiting_on_internal -> actively_working in jira``).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.connector import OriginRef
from core.errors import ConnectorError

if TYPE_CHECKING:
    from connectors.jira import JiraConnector

log = logging.getLogger("tiersync.connectors.jira")


def origin_marker(origin: OriginRef) -> dict[str, Any]:
    """The origin part of the ``tiersync`` issue property."""
    marker: dict[str, Any] = {"origin": f"{origin.tracker}:{origin.remote_id}"}
    if origin.url:
        title = origin.title or f"{origin.tracker} {origin.remote_id}"
        marker.update(origin_url=origin.url, origin_title=title[:255], linked=False)
    return marker


class BackLinks:
    def __init__(self, connector: "JiraConnector"):
        self.c = connector
        self.missing: dict[str, dict[str, Any]] = {}  # issue id -> its tiersync property
        self.arrived: dict[str, dict[str, Any]] = {}  # issue id -> property with a finished walk

    def notice(self, issue_id: str, marker: Any, status: str | None = None) -> None:
        """Remember an issue whose marker says its back link is not in place, or still holds
        the ``walking`` mark of a walk that arrived (the issue is at its ``to``)."""
        if not isinstance(marker, dict):
            return
        if marker.get("linked") is False and marker.get("origin_url"):
            self.missing[issue_id] = marker
        walking = marker.get("walking")
        if isinstance(walking, dict) and status and str(walking.get("to", "")).lower() == status.lower():
            self.arrived[issue_id] = marker

    def link(self, issue_id: str, marker: dict[str, Any], *, fresh: bool = False) -> bool:
        """Add (upsert) the back link, then mark it; False (and kept for repair) on failure.
        ``fresh``: ``marker`` is the property as this process just wrote it (the create); else
        the mark goes onto the property as it is now."""
        tracker, _, remote_id = str(marker["origin"]).partition(":")
        api = self.c.api
        try:
            api.retrying(f"link {issue_id} to its origin", lambda: api.client.add_remote_link(
                issue_id, {"url": marker["origin_url"], "title": marker["origin_title"]},
                globalId=f"tiersync:{tracker}:{remote_id}",
                application={"type": "tiersync", "name": "tiersync"}, relationship="escalated from"))
            current = marker if fresh else self._property(issue_id)
            if current.get("linked") is not True:
                api.retrying(f"mark the back link of {issue_id}", lambda: api.client.add_issue_property(
                    issue_id, self.c.config.property_key, {**current, "linked": True}))
        except ConnectorError as exc:  # the issue exists; the next cycle repairs the link
            log.warning("%s: could not add the remote link from %s to %s (repaired next cycle): %s",
                        self.c.name, issue_id, marker["origin"], exc)
            self.missing[issue_id] = marker
            return False
        self.missing.pop(issue_id, None)
        return True

    def repair(self) -> int:
        repaired = 0
        for issue_id, marker in list(self.missing.items()):
            repaired += int(self.link(issue_id, marker))
        for issue_id, marker in list(self.arrived.items()):
            repaired += int(self._unmark(issue_id, marker))
        return repaired

    def _unmark(self, issue_id: str, marker: dict[str, Any]) -> bool:
        """Remove a finished walk's mark (left when the process stopped right after arriving),
        if the property still holds that mark (not a new walk's, not cleared since)."""
        try:
            current = self._property(issue_id)
            if current.get("walking") != marker.get("walking"):
                self.arrived.pop(issue_id, None)
                return False
            value = {k: v for k, v in current.items() if k != "walking"}
            self.c.api.retrying(f"clear the walk mark of {issue_id}", lambda: self.c.api.client.add_issue_property(
                issue_id, self.c.config.property_key, value))
        except ConnectorError as exc:
            log.warning("%s: could not clear the walk mark of %s: %s", self.c.name, issue_id, exc)
            return False
        self.arrived.pop(issue_id, None)
        return True

    def _property(self, issue_id: str) -> dict[str, Any]:
        """The ``tiersync`` property as it is now (REST "Get issue property")."""
        api = self.c.api
        prop = api.retrying(f"read the {self.c.config.property_key} property of {issue_id}",
                            lambda: api.client.issue_property(issue_id, self.c.config.property_key))
        value = (getattr(prop, "raw", None) or {}).get("value")
        return dict(value) if isinstance(value, dict) else {}
