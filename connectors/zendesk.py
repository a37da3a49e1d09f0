"""Zendesk Support tickets through zenpy (tier 1).

Reads with the cursor-based incremental ticket export (users and organizations sideloaded),
writes with Update Ticket and ``safe_update`` (optimistic concurrency on ``updated_at``), creates
with ``external_id`` as the idempotency key, and bulk-updates with ``update_many`` jobs.
The flat native view is described in ``connectors/zendesk_view.py``.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, ClassVar, Iterator, TypeVar

from connectors import retry
from connectors.zendesk_attachments import ZendeskFiles, files_of
from connectors.users import ZendeskUsers
from core.connector import (TIERSYNC_COMMENT_MARK, Capabilities, Connector, OriginRef,
                            OutgoingComment, Page, RemoteComment, RemoteRecord, TrackerConfig,
                            Written)
from connectors.registry import register
from connectors.records import MISSING, UnreadableRecord, build_each
from connectors.zendesk_client import SHOW_MANY_LIMIT, TicketBatch, ZendeskClient
from connectors.zendesk_config import ZendeskConfig
from connectors.zendesk_events import DESCRIPTION, EventWindow, WindowUnreadable, window_comments
from connectors.zendesk_support import (BoundedCache, BulkResult, ExportCursor, comment_id,
                                        find_comment, job_results, origin_note, parse_time,
                                        start_timestamp, wait_for_job)
from connectors.zendesk_view import PATH_PATTERN, check_paths, flatten, people_ids, write_payload
from core.errors import (PermanentError, AuthError, BadRecord, ConfigError, Conflict, ConnectorError, NotFound, RateLimited,
                         Retryable, UnknownOutcome)
from core.secrets import read_secret

log = logging.getLogger("tiersync.zendesk")
T = TypeVar("T")
COMMENT_LOOKBACK = timedelta(minutes=5)  # clock skew allowed when looking for our own comment
# what a ticket of the export must look like before it is built (connectors/records.py)
TICKET_SHAPE: dict[str, tuple[Any, ...]] = {
    "id": (int,), "updated_at": (str,), "status": (str,), "tags": (list, MISSING),
    "custom_fields": (list, MISSING), "subject": (str, type(None), MISSING),
    "requester_id": (int, type(None), MISSING), "assignee_id": (int, type(None), MISSING),
    "organization_id": (int, type(None), MISSING), "via": (dict, type(None), MISSING)}


@register
class ZendeskConnector(ZendeskFiles, ZendeskUsers, Connector):
    kind: ClassVar[str] = "zendesk"
    config_model: ClassVar[type[TrackerConfig]] = ZendeskConfig
    field_path_pattern = PATH_PATTERN
    config: ZendeskConfig

    def __init__(self, name: str, config: ZendeskConfig):
        super().__init__(name, config)
        self._client: ZendeskClient | None = None
        self._users = BoundedCache()
        self._organizations = BoundedCache()
        self._window: EventWindow | None = None  # the latest export page's (load_details)

    @property
    def client(self) -> ZendeskClient:
        if self._client is None:
            cfg = self.config
            email = read_secret(cfg.email_env, tracker=self.name, purpose="the Zendesk agent email")
            token = read_secret(cfg.token_env, tracker=self.name, purpose="the Zendesk API token")
            self._client = ZendeskClient(tracker=self.name, base_url=cfg.base_url, email=email,
                                         token=token, credential=f"{cfg.email_env}/{cfg.token_env}",
                                         timeout=cfg.timeout_seconds)
        return self._client

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        return retry.call_with_retry(fn, max_attempts=self.config.max_attempts,
                                     max_wait=self.config.max_wait_seconds, what=f"{self.name}: {what}")

    # -- reading ---------------------------------------------------------------------------------
    def fetch_changes(self, cursor: str | None) -> Iterator[Page]:
        state = ExportCursor.load(cursor)
        last = cursor
        while True:
            after = state.after
            if after:
                batch = self._retry(lambda: self.client.export_page(cursor=after), "export page")
                since = state.since
            else:
                since = start = start_timestamp(self.config.start_at)
                batch = self._retry(lambda: self.client.export_page(start_time=start), "export page")
            fresh = [t for t in batch.tickets if t.get("status") != "deleted"
                     and state.is_new(str(t.get("id")), str(t.get("updated_at")))]
            for ticket in fresh:
                state.remember(str(ticket.get("id")), str(ticket.get("updated_at")))
            records, unreadable = self._records(TicketBatch(fresh, batch.users, batch.organizations),
                                                with_comments=False)
            self._window = _window(since, records)
            state.advance(str(t.get("updated_at")) for t in batch.tickets if isinstance(t, dict))
            state.after = batch.after_cursor or state.after
            dumped = state.dump()
            if records or unreadable or dumped != last:
                yield Page(records=records, cursor=dumped, unreadable=unreadable)
            last = dumped
            if batch.end_of_stream or not batch.after_cursor or batch.after_cursor == after:
                return

    def get(self, remote_id: str) -> RemoteRecord:
        ticket_id = self._ticket_id(remote_id)
        batch = self._retry(lambda: self.client.show_tickets([ticket_id]), "show ticket")
        batch.tickets = [t for t in batch.tickets if t.get("id") == ticket_id]
        if not batch.tickets:
            raise NotFound(f"ticket {remote_id} not found", tracker=self.name, status=404)
        return self._one(batch)

    def fetch_records(self, remote_ids: list[str]) -> list[RemoteRecord]:
        """Tickets by id through ``show_many`` (100 ids a call, Zendesk's limit), without their
        comments (the engine loads details of the relevant ones, as for the feed); deleted,
        missing and unbuildable tickets are left out (the next poll quarantines the latter)."""
        ids = list(dict.fromkeys(int(r) for r in remote_ids if str(r).isdigit()))
        records: list[RemoteRecord] = []
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            batch = self._retry(lambda: self.client.show_tickets(chunk), "show tickets")
            batch.tickets = [t for t in batch.tickets if t.get("id") in chunk
                             and t.get("status") != "deleted"]
            records.extend(self._records(batch, with_comments=False)[0])
        return records

    def find_by_idempotency_key(self, idempotency_key: str) -> RemoteRecord | None:
        batch = self._retry(lambda: self.client.tickets_by_external_id(idempotency_key),
                            "find ticket by external_id")
        matches = [t for t in batch.tickets if t.get("external_id") == idempotency_key]
        if not matches:
            return None
        batch.tickets = [min(matches, key=lambda t: t["id"])]
        return self._one(batch)

    def _one(self, batch: TicketBatch) -> RemoteRecord:
        records, unreadable = self._records(batch, with_comments=True)
        if unreadable:
            raise BadRecord(unreadable[0].reason, tracker=self.name, record_id=unreadable[0].id)
        return records[0]

    def _records(self, batch: TicketBatch, *, with_comments: bool
                 ) -> tuple[list[RemoteRecord], list[UnreadableRecord]]:
        """Records with sideloaded people (others fetched once per page); comments only when
        asked (the feed leaves them to :meth:`load_details`). Unbuildable tickets come back as
        unreadable records."""
        self._users.update_from(batch.users.values())
        self._organizations.update_from(batch.organizations.values())
        tickets = [t for t in batch.tickets if isinstance(t, dict)]
        comments = {t.get("id"): self._comments(t["id"]) for t in tickets} \
            if with_comments and self.config.include_comments else {}
        wanted = set().union(*(_safe_people(t) for t in tickets)) if tickets else set()
        wanted |= {c.get("author_id") for cs in comments.values() for c in cs}
        self._load_people({w for w in wanted if isinstance(w, int)},
                          {t.get("organization_id") for t in tickets
                           if isinstance(t.get("organization_id"), int)})
        return build_each(self.name, batch.tickets, lambda t: self._record(t, comments.get(t["id"], [])),
                          ident=lambda t: (t.get("id"), t.get("updated_at")), shape=TICKET_SHAPE)

    def load_details(self, records: list[RemoteRecord]) -> list[RemoteRecord]:
        """The records with their comments (read only for the records the engine asks for):
        those of the latest export page from the ticket event export in one read
        (connectors/zendesk_events.py), any other from its ticket's comment list."""
        if not self.config.include_comments:
            return records
        window = self._window
        paged = [r for r in records if window is not None and window.covers(r.id, r.version)]
        comments = self._window_comments(window, paged) if paged else {}
        files: dict[str, list[dict[str, Any]]] = {}  # the description's files count too
        for record in records:
            if record.id not in comments:  # [1:]: the first comment is the description
                files[record.id] = self._comments_if_found(int(record.id))
                comments[record.id] = files[record.id][1:]
        self._load_people({c.get("author_id") for cs in comments.values() for c in cs}, set())
        return [replace(r, comments=tuple(self._comment(c) for c in comments[r.id]
                                          if not c.get(DESCRIPTION)),
                        attachments=files_of(files.get(r.id, comments[r.id]))) for r in records]

    def _window_comments(self, window: EventWindow | None,
                         records: list[RemoteRecord]) -> dict[str, list[dict[str, Any]]]:
        """New comments of the page's ``records`` from the ticket event export; none (the
        caller reads comment lists) when the export cannot deliver the window."""
        if window is None:
            return {}
        try:
            found = window_comments(
                lambda start: self._retry(lambda: self.client.ticket_events(start), "ticket events"),
                window, {int(r.id) for r in records})
        except WindowUnreadable as exc:
            log.info("%s: reading comment lists instead of the event export: %s", self.name, exc)
            return {}
        except (Retryable, PermanentError) as exc:  # the lists still give every comment
            log.warning("%s: the ticket event export failed, reading comment lists: %s", self.name, exc)
            return {}
        return {str(ticket_id): found for ticket_id, found in found.items()}

    def _comments_if_found(self, ticket_id: int) -> list[dict[str, Any]]:
        """A ticket deleted since the export page was read has no comments, not an error that
        would stop the feed."""
        try:
            return self._comments(ticket_id)
        except NotFound:
            return []

    def _comments(self, ticket_id: int) -> list[dict[str, Any]]:
        return self._retry(lambda: self.client.comments(ticket_id), "list comments")

    def _load_people(self, user_ids: set[Any], organization_ids: set[Any]) -> None:
        missing = sorted(self._users.missing(user_ids))
        if missing:
            self._users.update_from(self._retry(lambda: self.client.users(missing), "show users"))
        missing_orgs = sorted(self._organizations.missing(organization_ids))
        if missing_orgs:
            self._organizations.update_from(self._retry(
                lambda: self.client.organizations(missing_orgs), "show organizations"))

    def _record(self, ticket: dict[str, Any], comments: list[dict[str, Any]]) -> RemoteRecord:
        updated = parse_time(ticket.get("updated_at")) or datetime.now(timezone.utc)
        return RemoteRecord(
            tracker=self.name, id=str(ticket["id"]), version=str(ticket.get("updated_at")),
            updated_at=updated, data=flatten(ticket, self._users, self._organizations),
            url=f"{self.config.base_url.rstrip('/')}/agent/tickets/{ticket['id']}",
            comments=tuple(self._comment(c) for c in comments[1:]),  # the first is the description
            attachments=files_of(comments),
            idempotency_key=ticket.get("external_id"))

    def _comment(self, comment: dict[str, Any]) -> RemoteComment:
        author = self._users.get(comment.get("author_id")) or {}
        return RemoteComment(id=str(comment["id"]), body=comment.get("body") or "",
                             public=bool(comment.get("public")),
                             created_at=parse_time(comment.get("created_at")) or datetime.now(timezone.utc),
                             author=author.get("email") or author.get("name"))

    def _ticket_id(self, remote_id: str) -> int:
        if not str(remote_id).isdigit():
            raise NotFound(f"ticket {remote_id!r} not found: Zendesk ticket ids are numbers",
                           tracker=self.name)
        return int(remote_id)

    # -- writing ---------------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], *, idempotency_key: str,
               origin: OriginRef | None = None) -> RemoteRecord:
        payload, ignored = write_payload(fields, creating=True, tracker=self.name)
        self._log_ignored(ignored)
        payload["external_id"] = idempotency_key
        note = origin_note(origin)
        if fields.get("description"):
            payload["comment"] = {"body": fields["description"],
                                  "public": self.config.description_public}
        else:  # Zendesk needs a first comment; ours is marked so it is never copied back
            payload["comment"] = {"body": note or f"{TIERSYNC_COMMENT_MARK} created by tiersync",
                                  "public": False}
            note = None
        ticket_id = self._create_once(payload, idempotency_key)
        if note:
            self._add_back_link(ticket_id, note)
        return self.get(str(ticket_id))

    def _create_once(self, payload: dict[str, Any], key: str) -> int:
        """POST the ticket; after an unknown outcome, look the key up before sending again."""
        unknown = False

        def attempt() -> int:
            nonlocal unknown
            if unknown:
                found = self.find_by_idempotency_key(key)
                if found is not None:
                    log.info("%s: ticket for %s already exists (%s)", self.name, key, found.id)
                    return int(found.id)
            try:
                ticket, _ = self.client.create_ticket(payload)
            except RateLimited:
                raise  # refused before processing: safe to send again
            except Retryable as exc:
                unknown = True
                raise UnknownOutcome(f"create of {key} has an unknown outcome: {exc}",
                                     tracker=self.name, status=exc.status) from exc
            return int(ticket["id"])

        return self._retry(attempt, "create ticket")

    def _add_back_link(self, ticket_id: int, note: str) -> None:
        try:
            self.add_comment(str(ticket_id), note, public=False)
        except ConnectorError as exc:  # the ticket exists; a missing back link is not fatal
            log.warning("%s: ticket %s created but its origin note failed: %s", self.name,
                        ticket_id, exc)

    def update(self, remote_id: str, fields: dict[str, Any], *,
               expected_version: str | None) -> RemoteRecord:
        ticket_id = self._ticket_id(remote_id)
        payload, ignored = write_payload(fields, creating=False, tracker=self.name)
        self._log_ignored(ignored)
        if not payload:
            current = self.get(remote_id)
            if expected_version is not None and current.version != expected_version:
                raise Conflict(f"ticket {remote_id} is at {current.version}, not {expected_version}",
                               tracker=self.name, status=409)
            return current
        if expected_version is not None:
            payload.update(safe_update=True, updated_stamp=expected_version)
        ticket, _ = self._retry(lambda: self.client.update_ticket(ticket_id, payload), "update ticket")
        # the ticket as the update left it, without a comment list: the comments made since
        # come with the next export page (the event export), so none is read here
        self._load_people(people_ids(ticket), {ticket.get("organization_id")})
        return self._record(ticket, [])

    def write(self, remote_id: str, fields: dict[str, Any], comment: OutgoingComment | None, *,
              expected_version: str) -> Written:
        """Fields and a comment in one Update Ticket (``ticket.comment`` rides in the same PUT,
        developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket), refused
        whole with 409 by ``safe_update`` unless the ticket is still at ``expected_version``
        ("Protecting against ticket update collisions"). Sending it again after a lost reply
        is safe for the same reason: a first attempt that landed moved ``updated_at``, so the
        resend is refused (Conflict) instead of adding the comment twice."""
        ticket_id = self._ticket_id(remote_id)
        payload, ignored = write_payload(fields, creating=False, tracker=self.name)
        self._log_ignored(ignored)
        if comment is not None:
            payload["comment"] = {"body": comment.body, "public": comment.public}
            if comment.notify:
                payload["followers"] = [{"user_email": who, "action": "put"} for who in comment.notify]
        payload.update(safe_update=True, updated_stamp=expected_version)
        since = datetime.now(timezone.utc) - COMMENT_LOOKBACK
        ticket, audit = self._retry(lambda: self.client.update_ticket(ticket_id, payload),
                                    "update ticket")
        self._load_people(people_ids(ticket), {ticket.get("organization_id")})
        made = None
        if comment is not None:
            made = comment_id(audit) or self._find_comment(ticket_id, comment.body, comment.public,
                                                          since)
        return Written(self._record(ticket, []), made)

    def add_comment(self, remote_id: str, body: str, *, public: bool,
                    notify: tuple[str, ...] = ()) -> str:
        """Add the comment; ``notify`` addresses become followers of the ticket in the same
        update, so Zendesk notifies them (Setting followers: ``{"user_email", "action": "put"}``;
        followers must be agents, Zendesk leaves end users out)."""
        ticket_id = self._ticket_id(remote_id)
        update: dict[str, Any] = {"comment": {"body": body, "public": public}}
        if notify:
            update["followers"] = [{"user_email": who, "action": "put"} for who in notify]
        since = datetime.now(timezone.utc) - COMMENT_LOOKBACK
        unknown = False

        def attempt() -> str:
            nonlocal unknown
            if unknown:
                existing = self._find_comment(ticket_id, body, public, since)
                if existing:
                    return existing
            try:
                _, audit = self.client.update_ticket(ticket_id, update)
            except RateLimited:
                raise
            except Retryable as exc:
                unknown = True
                raise UnknownOutcome(f"comment on {remote_id} has an unknown outcome: {exc}",
                                     tracker=self.name, status=exc.status) from exc
            return comment_id(audit) or self._find_comment(ticket_id, body, public, since) or ""

        return self._retry(attempt, "add comment")

    def _find_comment(self, ticket_id: int, body: str, public: bool, since: datetime) -> str | None:
        return find_comment(self._comments(ticket_id), body, public, since)

    def update_many(self, items: list[tuple[str, dict[str, Any]]]) -> list[BulkResult]:
        """Bulk update in jobs of at most 100 tickets (no version check); per-ticket results."""
        results: list[BulkResult] = []
        for start in range(0, len(items), SHOW_MANY_LIMIT):
            chunk = [(self._ticket_id(rid), write_payload(f, creating=False, tracker=self.name)[0])
                     for rid, f in items[start:start + SHOW_MANY_LIMIT]]
            job = self._retry(lambda: self.client.update_many(chunk), "update_many")
            job = wait_for_job(job, lambda job_id: self._retry(
                lambda: self.client.job_status(job_id), "job status"),
                poll=self.config.job_poll_seconds, timeout=self.config.job_timeout_seconds,
                tracker=self.name)
            results += job_results(job, [ticket_id for ticket_id, _ in chunk])
        return results

    # -- the rest --------------------------------------------------------------------------------
    def check_online(self, field_paths: list[str], values: dict[str, list[Any]]) -> list[str]:
        try:
            ticket_fields = self._retry(self.client.ticket_fields, "list ticket fields")
        except ConfigError as exc:
            return exc.problems
        except AuthError as exc:
            return [str(exc)]
        except ConnectorError as exc:
            return [f"[{self.name}] cannot list ticket fields: {exc}"]
        return check_paths(field_paths, values, ticket_fields)

    def capabilities(self) -> Capabilities:
        return Capabilities(public_comments=True, internal_comments=True, transitions=False,
                            optimistic_concurrency=True, bulk_update=True, max_page_size=1000,
                            versioned_comments=True, version_order="time",
                            extra={"update_many_chunk": SHOW_MANY_LIMIT})

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _log_ignored(self, ignored: list[str]) -> None:
        if ignored:
            log.debug("%s: not writable through the API, left out: %s", self.name, ", ".join(ignored))


def _window(since: float | None, records: list[RemoteRecord]) -> EventWindow | None:
    """The event window of an export page: from the feed's previous position to its newest
    ticket; None when the position is unknown (a cursor from before ``since`` was kept)."""
    if since is None or not records:
        return None
    end = max(r.updated_at.timestamp() for r in records)
    return EventWindow(start=since, end=end, versions={r.id: r.version for r in records})


def _safe_people(ticket: dict[str, Any]) -> set[Any]:
    """The people a ticket names, or none when the ticket is too broken to say."""
    try:
        return people_ids(ticket)
    except Exception:  # noqa: BLE001 - the ticket is reported unreadable when it is built
        return set()
