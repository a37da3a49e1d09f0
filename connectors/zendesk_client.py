"""A thin wrapper around zenpy: builds the client, turns every failure into a typed error and
hands back the JSON Zendesk sent (with its sideloads), so the connector never sees zenpy objects.

zenpy's own resending is switched off:
- it gets our ``requests.Session`` (plain ``HTTPAdapter``: urllib3 ``Retry(0, read=False)``), so
  zenpy never mounts its adapter with ``Retry(total=3)``;
- a response hook on that session raises for every HTTP status >= 400 before zenpy looks at the
  response, so its 429 loop (``sleep(1)`` while ``Retry-After`` > 0, no attempt limit) never runs;
  ``ratelimit_budget=1`` would stop that loop at its first second anyway.

Base URL per instance (no process-global ``ZENPY_FORCE_NETLOC``): zenpy builds
``{protocol}://{subdomain}.{domain}/api/v2``, with ``protocol`` an attribute of each API object.
So ``http://127.0.0.1:8080`` becomes subdomain ``127``, domain ``0.0.1:8080``, protocol ``http``;
two clients with different base URLs coexist in one process.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, TypeVar

import requests
from zenpy import Zenpy
from zenpy.lib.api import BaseApi
from zenpy.lib.api_objects import Comment, Ticket, User
from zenpy.lib.exception import APIException, RatelimitBudgetExceeded, ZenpyException

from connectors.answers import has_list, has_object, is_object, response_hook
from connectors.retry import classify_status, classify_transport, watch_rate_budget
from connectors.zendesk_config import split_base_url
from core.errors import PULL, ConnectorError, PermanentError, RateLimited, Retryable

log = logging.getLogger("tiersync.zendesk")
T = TypeVar("T")
SIDELOADS = ["users", "organizations"]
SHOW_MANY_LIMIT = 100
# what each endpoint answers (developer.zendesk.com/api-reference/ticketing/...): anything else
# is not Zendesk's API (a login or proxy page), see connectors/answers.py
ZENDESK_SHAPES = [
    ("GET", r"/incremental/tickets", has_list("tickets")),
    ("GET", r"/incremental/ticket_events", has_list("ticket_events")),
    ("GET", r"/tickets/show_many", has_list("tickets")),
    ("GET", r"/tickets/\d+/comments", has_list("comments")),
    ("GET", r"/tickets/\d+/audits", has_list("audits")),
    ("GET", r"/tickets/\d+(\.json)?$", has_object("ticket")),
    ("GET", r"/tickets(\.json)?$", has_list("tickets")),
    ("GET", r"/ticket_fields", has_list("ticket_fields")),
    ("GET", r"/users/me", has_object("user")),
    ("GET", r"/users/show_many", has_list("users")),
    ("GET", r"/organizations/show_many", has_list("organizations")),
    ("GET", r"/job_statuses/", has_object("job_status")),
    ("GET", r".", is_object),
]


class HttpStatusError(Exception):
    """Raised by the session hook for HTTP >= 400, carrying the response."""

    def __init__(self, response: requests.Response):
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


def _raise_for_status(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    if response.status_code >= 400:
        raise HttpStatusError(response)
    return response


@dataclass
class TicketBatch:
    """Tickets as Zendesk sent them, with the sideloaded users and organizations by id."""

    tickets: list[dict[str, Any]]
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    organizations: dict[int, dict[str, Any]] = field(default_factory=dict)
    after_cursor: str | None = None
    end_of_stream: bool = True


class ZendeskClient:
    def __init__(self, *, tracker: str, base_url: str, email: str, token: str, credential: str,
                 timeout: float):
        self.tracker = tracker
        self.credential = credential  # names of the credential variables, for AuthError
        protocol, subdomain, domain = split_base_url(base_url)
        self.session = requests.Session()
        self.session.hooks["response"].append(_raise_for_status)
        self.session.hooks["response"].append(response_hook(tracker, ZENDESK_SHAPES))
        watch_rate_budget(self.session, tracker)
        self.zenpy = Zenpy(subdomain=subdomain, domain=domain, email=email, token=token,
                           session=self.session, timeout=timeout, disable_cache=True,
                           ratelimit_budget=1)
        for api in _apis(self.zenpy):
            api.protocol = protocol

    def close(self) -> None:
        self.session.close()

    # -- error translation ---------------------------------------------------------------------
    def call(self, fn: Callable[[], T]) -> T:
        """Run one zenpy call; every failure comes out as a ConnectorError subclass."""
        try:
            return fn()
        except HttpStatusError as exc:
            raise self._status_error(exc.response) from None
        except RatelimitBudgetExceeded as exc:
            raise RateLimited(f"rate limited: {exc}", tracker=self.tracker, status=429) from None
        except requests.RequestException as exc:
            raise (classify_transport(self.tracker, exc)
                   or Retryable(f"{type(exc).__name__}: {exc}", tracker=self.tracker)) from None
        except (APIException, ZenpyException) as exc:
            raise PermanentError(f"unexpected answer: {str(exc)[:300]}", tracker=self.tracker) from None

    def export_call(self, fn: Callable[[], T]) -> T:
        """A call to an incremental export endpoint. Those have a limit of their own, 10 requests
        a minute ("Incremental Exports", Rate limits: developer.zendesk.com/api-reference/
        ticketing/ticket-management/incremental_exports/; "Endpoint rate limits" on the Rate
        limits page): their 429 holds back the change feed, not the account's other calls."""
        try:
            return self.call(fn)
        except RateLimited as exc:
            exc.scope = PULL
            raise

    def _status_error(self, response: requests.Response) -> ConnectorError:
        return classify_status(self.tracker, response.status_code, response.headers,
                               _error_message(response), credential=self.credential)

    # -- reads ---------------------------------------------------------------------------------
    def export_page(self, *, start_time: int | None = None, cursor: str | None = None) -> TicketBatch:
        """One page of the cursor-based incremental ticket export."""
        def page() -> TicketBatch:
            if cursor:
                result = self.zenpy.tickets.incremental(cursor=cursor, include=SIDELOADS)
            else:
                result = self.zenpy.tickets.incremental(start_time=start_time, include=SIDELOADS)
            body = _raw(result)
            return _batch(body, after_cursor=body.get("after_cursor"),
                          end_of_stream=bool(body.get("end_of_stream", True)))
        return self.export_call(page)

    def show_tickets(self, ids: list[int]) -> TicketBatch:
        return self.call(lambda: _batch(_raw(self.zenpy.tickets(ids=ids, include=SIDELOADS))))

    def tickets_by_external_id(self, external_id: str) -> TicketBatch:
        return self.call(lambda: _batch(_raw(
            self.zenpy.tickets(external_id=external_id, include=SIDELOADS))))

    def ticket_events(self, start_time: float) -> dict[str, Any]:
        """One page of the time-based ticket event export, comments included (the
        ``comment_events`` sideload); ``start_time`` as the previous page's ``end_time`` gave it."""
        start = int(start_time) if float(start_time).is_integer() else start_time
        return self.export_call(lambda: _raw(self.zenpy.tickets.events(start_time=start,
                                                                       include="comment_events")))

    def comments(self, ticket_id: int) -> list[dict[str, Any]]:
        return self.call(lambda: [c.to_dict() for c in self.zenpy.tickets.comments(ticket_id)])

    def users(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        return self._show_many(self.zenpy.users, ids)

    def organizations(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        return self._show_many(self.zenpy.organizations, ids)

    def _show_many(self, api: Any, ids: Iterable[int]) -> list[dict[str, Any]]:
        wanted = sorted(set(ids))
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), SHOW_MANY_LIMIT):
            chunk = wanted[start:start + SHOW_MANY_LIMIT]
            found += self.call(lambda: [o.to_dict() for o in api(ids=chunk)])
        return found

    def ticket_fields(self) -> list[dict[str, Any]]:
        return self.call(lambda: [f.to_dict() for f in self.zenpy.ticket_fields()])

    def me(self) -> dict[str, Any]:
        return self.call(lambda: self.zenpy.users.me().to_dict())

    def job_status(self, job_id: str) -> dict[str, Any]:
        return self.call(lambda: self.zenpy.job_status(id=job_id).to_dict())

    # -- writes (never retried here) -------------------------------------------------------------
    def create_ticket(self, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """POST /tickets.json; returns (ticket, audit)."""
        return self.call(lambda: _ticket_and_audit(self.zenpy.tickets.create(build_ticket(payload))))

    def update_ticket(self, ticket_id: int, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """PUT /tickets/{id}.json; returns (ticket, audit)."""
        return self.call(lambda: _ticket_and_audit(
            self.zenpy.tickets.update(build_ticket(payload, ticket_id))))

    def update_many(self, items: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        """PUT /tickets/update_many.json with at most 100 tickets; returns the job status."""
        if len(items) > SHOW_MANY_LIMIT:
            raise ValueError("update_many takes at most 100 tickets per job")
        tickets = [build_ticket(payload, ticket_id) for ticket_id, payload in items]
        return self.call(lambda: self.zenpy.tickets.update(tickets).to_dict())


def build_ticket(payload: dict[str, Any], ticket_id: int | None = None) -> Ticket:
    """A zenpy Ticket whose serialisation is exactly ``payload`` (plus the id)."""
    requester = payload.get("requester")
    # passed to the constructor, the requester does not drag a ``requester_id: null`` along
    ticket = Ticket(id=ticket_id, requester=User(**requester) if requester else None)
    for key, value in payload.items():
        if key == "comment":
            value = Comment(**value)
        if key != "requester":
            setattr(ticket, key, value)
    return ticket


def _apis(client: Zenpy) -> Iterable[BaseApi]:
    for value in vars(client).values():
        if isinstance(value, BaseApi):
            yield value
            yield from (v for v in vars(value).values() if isinstance(v, BaseApi))


def _raw(result: Any) -> dict[str, Any]:
    # zenpy's result generators keep the page they were built from, sideloads included; the
    # public API only exposes the deserialised main objects (users and organizations are dropped).
    return getattr(result, "_response_json", None) or {}


def _batch(body: dict[str, Any], **extra: Any) -> TicketBatch:
    return TicketBatch(tickets=list(body.get("tickets") or []),
                       users={u["id"]: u for u in body.get("users") or []},
                       organizations={o["id"]: o for o in body.get("organizations") or []}, **extra)


def _ticket_and_audit(result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    ticket = getattr(result, "ticket", None)
    if ticket is None:  # a plain Ticket (no audit in the answer)
        return result.to_dict(), {}
    audit = getattr(result, "audit", None)
    return ticket.to_dict(), audit.to_dict() if audit is not None else {}


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "")[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            error = error.get("title") or error.get("message")
        parts = [str(p) for p in (error, body.get("description"), body.get("details")) if p]
        return "; ".join(parts)[:300]
    return str(body)[:300]
