"""The in-memory Zendesk account behind the simulator: users, organizations, ticket fields and
tickets with their comments and audits. Plain Python, no HTTP; every method is called under the
simulator's lock. Errors are :class:`ApiError` carrying Zendesk's status and error body.

Behaviour copied from Zendesk: the first comment is the ticket's description; a drop-down
(tagger) field adds its option's tag to the ticket's tags; ``safe_update`` with a stale
``updated_stamp`` answers 409; a closed ticket cannot be updated.

``updated_at`` has the precision of ``quantum``: whole seconds in the realistic profile, as
Zendesk sends them (developer.zendesk.com/api-reference/ticketing/tickets/tickets/: "updated_at
... ISO 8601"; every recorded example in ../shared/specs/zendesk/tickets.yml is whole seconds),
one second times the profile's time scale when scaled, one millisecond in the lenient profile.
One deviation: every change moves a ticket's ``updated_at`` forward by at least one quantum, so
two versions of a ticket never share an ``updated_at`` (``safe_update`` can tell them apart);
under a burst of changes to one ticket the stamp can run ahead of the wall clock.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from simulators.zendesk_values import (ApiError, field_tags, field_value, invalid, iso, iso_ms,
                                       parse_iso)

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
TYPES = ("problem", "incident", "question", "task")
SIMPLE_ATTRIBUTES = ("subject", "external_id", "due_at", "group_id", "brand_id", "ticket_form_id",
                     "problem_id")


@dataclass
class TicketRow:
    data: dict[str, Any]  # writable attributes, tags, custom field values by id
    created_at: datetime
    updated_at: datetime
    seq: int  # position in the change order (the incremental export's order)
    comments: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)


class ZendeskState:
    def __init__(self, clock: Callable[[], datetime], quantum: timedelta = timedelta(milliseconds=1)):
        self.clock = clock
        self.quantum = quantum  # precision of updated_at
        self.audit_stamps: dict[int, datetime] = {}  # audit id -> its stamp (the event export)
        self.on_change: Callable[[], None] = lambda: None  # called after every ticket change
        self.users: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.fields: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, TicketRow] = {}
        self.seq = 0
        self._event_ids = itertools.count(900_000_000_001)
        self._user_ids = itertools.count(361_000_000_001)

    # -- people ----------------------------------------------------------------------------------
    def add_user(self, user: dict[str, Any]) -> dict[str, Any]:
        user = {"role": "end-user", "active": True, "organization_id": None, **user}
        user.setdefault("id", next(self._user_ids))
        user.setdefault("name", str(user.get("email") or user["id"]).split("@")[0])
        stamp = iso(self.clock())
        user.setdefault("created_at", stamp)
        user.setdefault("updated_at", stamp)
        self.users[int(user["id"])] = user
        return user

    def user_by_email(self, email: str | None) -> dict[str, Any] | None:
        wanted = (email or "").strip().lower()
        return next((u for u in self.users.values() if (u.get("email") or "").lower() == wanted),
                    None) if wanted else None

    def acting_user(self, email: str | None) -> dict[str, Any]:
        """The authenticated user; unknown API users become agents (any credentials work)."""
        return self.user_by_email(email) or self.add_user(
            {"email": email or "api@example.com", "role": "agent", "name": "API user"})

    def _requester_id(self, t: dict[str, Any], author: dict[str, Any]) -> int:
        if t.get("requester_id") is not None:
            if int(t["requester_id"]) not in self.users:
                raise invalid("requester", "Requester is invalid")
            return int(t["requester_id"])
        if isinstance(t.get("requester"), dict) and t["requester"].get("email"):
            found = self.user_by_email(t["requester"]["email"])
            return int((found or self.add_user(dict(t["requester"])))["id"])
        return int(author["id"])

    def _assignee_id(self, t: dict[str, Any]) -> int | None:
        if t.get("assignee_email"):
            user = self.user_by_email(t["assignee_email"])
            if user is None or user.get("role") not in ("agent", "admin") or user.get("active") is False:
                raise invalid("assignee", f"{t['assignee_email']} is not an agent")
            return int(user["id"])
        if t.get("assignee_id") is None:
            return None
        user = self.users.get(int(t["assignee_id"]))
        if user is None or user.get("role") not in ("agent", "admin"):
            raise invalid("assignee", "Assignee is not an agent")
        return int(user["id"])

    # -- tickets ---------------------------------------------------------------------------------
    def create_ticket(self, t: dict[str, Any], author: dict[str, Any], channel: str = "api",
                      created_at: datetime | None = None) -> tuple[TicketRow, dict[str, Any]]:
        comment = t.get("comment") or {}
        body = comment.get("body") or comment.get("html_body")
        if not body:
            raise invalid("description", "Description: cannot be blank")
        requester_id = self._requester_id(t, author)
        now = self._quantize(created_at or self.clock())
        data: dict[str, Any] = {"requester_id": requester_id, "submitter_id": int(author["id"]),
                                "organization_id": self.users[requester_id].get("organization_id"),
                                "status": "new", "priority": None, "type": None, "tags": [],
                                "custom": {}, "via": {"channel": channel, "source": {}},
                                "assignee_id": None, "subject": None}
        requester = self.users[requester_id]
        org = self.organizations.get(requester.get("organization_id")) or {}
        data["tags"] = list(dict.fromkeys([*(requester.get("tags") or []), *(org.get("tags") or [])]))
        row = TicketRow(data=data, created_at=now, updated_at=now, seq=0)
        ticket_id = max(self.tickets, default=0) + 1
        self.tickets[ticket_id] = row
        try:
            events = self._apply(row, t, creating=True)
        except ApiError:
            del self.tickets[ticket_id]
            raise
        if data["subject"] is None:
            data["subject"] = body.strip().splitlines()[0][:80]
        return row, self._record_change(ticket_id, row, author, channel, events, comment, now)

    def update_ticket(self, ticket_id: int, t: dict[str, Any], author: dict[str, Any],
                      channel: str = "api") -> tuple[TicketRow, dict[str, Any]]:
        row = self.ticket(ticket_id)
        if t.get("safe_update"):
            stamp = parse_iso(t.get("updated_stamp"))
            if stamp is None or stamp != row.updated_at:
                raise ApiError(409, "UpdateConflict", "Safe Update prevented the update due to "
                               "outdated ticket data. Please fetch the latest ticket data and try again.")
        if row.data["status"] == "closed":
            raise invalid("status", "Status: closed prevents ticket update")
        events = self._apply(row, t, creating=False)
        return row, self._record_change(ticket_id, row, author, channel, events, t.get("comment"),
                                        self._next_stamp(row))

    def update_many(self, items: list[dict[str, Any]], author: dict[str, Any]) -> list[dict[str, Any]]:
        """Apply each ticket update on its own; Zendesk's per-ticket job results."""
        results = []
        for index, item in enumerate(items):
            ticket_id = int(item.get("id") or 0)
            try:
                self.update_ticket(ticket_id, {k: v for k, v in item.items() if k != "id"}, author)
                results.append({"id": ticket_id, "action": "update", "success": True,
                                "status": "Updated"})
            except ApiError as exc:
                results.append({"id": ticket_id, "index": index, "error": exc.body["error"],
                                "details": exc.summary()})
        return results

    def ticket(self, ticket_id: int) -> TicketRow:
        row = self.tickets.get(int(ticket_id))
        if row is None:
            raise ApiError(404, "RecordNotFound", "Not found")
        return row

    def _next_stamp(self, row: TicketRow) -> datetime:
        return max(self._quantize(self.clock()), row.updated_at + self.quantum)

    def _quantize(self, moment: datetime) -> datetime:
        """``moment`` floored to the precision of ``updated_at``."""
        step = self.quantum.total_seconds()
        if step >= 1 and step.is_integer():
            return moment.replace(microsecond=0)
        epoch = moment.timestamp()
        return datetime.fromtimestamp(round(epoch - epoch % step, 3), tz=moment.tzinfo)

    def stamp_text(self, moment: datetime) -> str:
        """``updated_at`` on the wire: whole seconds at full precision, else milliseconds."""
        return iso(moment) if self.quantum >= timedelta(seconds=1) else iso_ms(moment)

    def _apply(self, row: TicketRow, t: dict[str, Any], *, creating: bool) -> list[dict[str, Any]]:
        """Validate and apply ticket attributes; returns Change/Create events."""
        changes: dict[str, Any] = {}
        for name, allowed in (("status", STATUSES), ("priority", PRIORITIES), ("type", TYPES)):
            if name in t:
                if t[name] is not None and t[name] not in allowed:
                    raise invalid(name, f"{name.capitalize()}: {t[name]!r} is not valid")
                if name == "status" and t[name] == "new" and not creating and row.data["status"] != "new":
                    raise invalid("status", "Status: cannot be set back to new")
                if t[name] is not None or name != "status":  # a null status changes nothing
                    changes[name] = t[name]
        for name in SIMPLE_ATTRIBUTES:
            if name in t:
                changes[name] = t[name]
        if "assignee_id" in t or "assignee_email" in t:
            changes["assignee_id"] = self._assignee_id(t)
            if creating and changes["assignee_id"] and "status" not in t:
                changes["status"] = "open"
        if "organization_id" in t:
            if t["organization_id"] is not None and int(t["organization_id"]) not in self.organizations:
                raise invalid("organization", "Organization is invalid")
            changes["organization_id"] = t["organization_id"]
        if "requester_id" in t and not creating:
            changes["requester_id"] = self._requester_id(t, {})
        tags = list(dict.fromkeys(str(x) for x in t["tags"])) if t.get("tags") is not None else None
        if tags is not None and creating:  # the requester's and organization's tags stay
            tags = list(dict.fromkeys(row.data["tags"] + tags))
        if t.get("followers"):
            changes["follower_ids"] = self._followers(row, t["followers"])
        custom = self._custom_values(t.get("custom_fields") or t.get("fields") or [])
        events = [self._event("Create" if creating else "Change", k, v, row.data.get(k))
                  for k, v in changes.items() if creating or row.data.get(k) != v]
        row.data.update(changes)
        if tags is not None or custom:
            events += self._apply_tags_and_custom(row, tags, custom, creating)
        return events

    def _followers(self, row: TicketRow, items: list[Any]) -> list[int]:
        """Setting followers (developer.zendesk.com, "Creating and updating tickets", Setting
        followers): ``[{"user_id" | "user_email", "action": "put" | "delete"}]``, put being the
        default; followers must be agents ("end users cannot be added as followers"): others
        are left out. Unknown addresses are not created (harsher than CCs, which create them)."""
        current = list(row.data.get("follower_ids") or [])
        for item in items:
            if not isinstance(item, dict) or item.get("action", "put") not in ("put", "delete"):
                raise invalid("followers", f"Followers: {item!r} is not a follower object")
            user = (self.users.get(int(item["user_id"])) if item.get("user_id")
                    else self.user_by_email(item.get("user_email")))
            if user is None or user.get("role") not in ("agent", "admin"):
                continue
            if item.get("action", "put") == "delete":
                current = [uid for uid in current if uid != user["id"]]
            elif user["id"] not in current:
                current.append(int(user["id"]))
        return current

    def _custom_values(self, items: list[dict[str, Any]]) -> dict[int, Any]:
        values: dict[int, Any] = {}
        for item in items:
            field_def = self.fields.get(int(item.get("id") or 0))
            if field_def is None or field_def.get("system"):
                continue  # Zendesk ignores values for fields it does not know
            values[int(item["id"])] = field_value(field_def, item.get("value"))
        return values

    def _apply_tags_and_custom(self, row: TicketRow, tags: list[str] | None,
                               custom: dict[int, Any], creating: bool) -> list[dict[str, Any]]:
        before_tags = list(row.data["tags"])
        new_tags = tags if tags is not None else list(before_tags)
        events = []
        for field_id, value in custom.items():
            old = row.data["custom"].get(field_id)
            new_tags = field_tags(self.fields[field_id], old, value, new_tags)
            row.data["custom"][field_id] = value
            if creating or old != value:
                events.append(self._event("Create" if creating else "Change", str(field_id), value, old))
        row.data["tags"] = list(dict.fromkeys(new_tags))
        if row.data["tags"] != before_tags:
            events.append(self._event("Create" if creating else "Change", "tags", row.data["tags"],
                                      before_tags))
        return events

    def _event(self, kind: str, name: str, value: Any, previous: Any) -> dict[str, Any]:
        event = {"id": next(self._event_ids), "type": kind, "field_name": name, "value": value}
        if kind == "Change":
            event["previous_value"] = previous
        return event

    def _record_change(self, ticket_id: int, row: TicketRow, author: dict[str, Any], channel: str,
                       events: list[dict[str, Any]], comment: dict[str, Any] | None,
                       stamp: datetime) -> dict[str, Any]:
        audit_id = next(self._event_ids)
        if comment and (comment.get("body") or comment.get("html_body")):
            events.append(self._comment(row, comment, author, channel, stamp, audit_id))
        row.updated_at = stamp
        self.on_change()
        self.seq += 1
        row.seq = self.seq
        audit = {"id": audit_id, "ticket_id": ticket_id, "created_at": iso(stamp),
                 "author_id": author.get("id"), "via": {"channel": channel, "source": {}},
                 "metadata": {"system": {}, "custom": {}}, "events": events}
        row.audits.append(audit)
        self.audit_stamps[audit_id] = stamp
        return audit

    def _comment(self, row: TicketRow, comment: dict[str, Any], author: dict[str, Any],
                 channel: str, stamp: datetime, audit_id: int) -> dict[str, Any]:
        body = str(comment.get("body") or comment.get("html_body"))
        public = bool(comment.get("public", True))
        event = {"id": next(self._event_ids), "type": "Comment",
                 "author_id": comment.get("author_id") or author.get("id"), "body": body,
                 "html_body": f"<div class=\"zd-comment\"><p>{body}</p></div>", "plain_body": body,
                 "public": public, "attachments": list(comment.get("attachments") or []),
                 "audit_id": audit_id,
                 "via": {"channel": channel, "source": {}}, "metadata": {"system": {}},
                 "created_at": iso(stamp)}
        row.comments.append(event)
        if not public and row.data.get("is_public") is None and len(row.comments) == 1:
            row.data["is_public"] = False
        return event

