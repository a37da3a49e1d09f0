"""How the Zendesk simulator's state looks on the wire: ticket JSON, sideloads, the cursor-based
incremental export, cursor pagination of lists, the job status, plus seeding and snapshots."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from simulators.zendesk_state import TicketRow, ZendeskState
from simulators.zendesk_values import ApiError, iso, iso_ms, parse_iso

SYSTEM_FIELDS = [  # the system ticket fields every Zendesk account lists in /ticket_fields
    ("subject", "Subject"), ("description", "Description"), ("status", "Status"),
    ("tickettype", "Type"), ("priority", "Priority"), ("group", "Group"), ("assignee", "Assignee")]
EXPORT_MAX_PAGE = 1000


# -- tickets ---------------------------------------------------------------------------------------
def ticket_json(state: ZendeskState, ticket_id: int, row: TicketRow, base: str) -> dict[str, Any]:
    d = row.data
    custom = [{"id": fid, "value": d["custom"].get(fid)}
              for fid, f in sorted(state.fields.items()) if not f.get("system") and f.get("active", True)]
    ticket = {
        "id": ticket_id, "url": f"{base}/api/v2/tickets/{ticket_id}.json",
        "external_id": d.get("external_id"), "via": d["via"], "created_at": iso(row.created_at),
        "updated_at": state.stamp_text(row.updated_at), "type": d.get("type"), "subject": d.get("subject"),
        "raw_subject": d.get("subject"),
        "description": row.comments[0]["body"] if row.comments else "",
        "priority": d.get("priority"), "status": d["status"], "recipient": None,
        "requester_id": d["requester_id"], "submitter_id": d["submitter_id"],
        "assignee_id": d.get("assignee_id"), "organization_id": d.get("organization_id"),
        "group_id": d.get("group_id"), "collaborator_ids": list(d.get("follower_ids") or []),
        "follower_ids": list(d.get("follower_ids") or []),
        "email_cc_ids": [], "forum_topic_id": None, "problem_id": d.get("problem_id"),
        "has_incidents": False, "is_public": d.get("is_public", True), "due_at": d.get("due_at"),
        "tags": list(d["tags"]), "custom_fields": custom, "fields": custom,
        "satisfaction_rating": None, "sharing_agreement_ids": [], "followup_ids": [],
        "ticket_form_id": d.get("ticket_form_id"), "brand_id": d.get("brand_id"),
        "allow_channelback": False, "allow_attachments": True, "from_messaging_channel": False,
        "generated_timestamp": int(row.updated_at.timestamp())}
    return ticket


def sideloads(state: ZendeskState, tickets: list[dict[str, Any]], include: str | None) -> dict[str, Any]:
    wanted = {part.strip() for part in (include or "").split(",") if part.strip()}
    out: dict[str, Any] = {}
    if "users" in wanted:
        ids = {t.get(k) for t in tickets for k in ("requester_id", "submitter_id", "assignee_id")}
        out["users"] = [state.users[i] for i in sorted(i for i in ids if i in state.users)]
    if "organizations" in wanted:
        ids = {t.get("organization_id") for t in tickets}
        out["organizations"] = [state.organizations[i] for i in sorted(
            i for i in ids if i in state.organizations)]
    return out


# -- the cursor-based incremental export --------------------------------------------------------
def encode_cursor(seq: int, ticket_id: int) -> str:
    # shaped like Zendesk's (base64 of "<stamp>.0||<id>|"); our stamp is the change sequence
    return base64.urlsafe_b64encode(f"{seq}.0||{ticket_id}|".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        return int(raw.split(".", 1)[0])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "InvalidPaginationParameter", "cursor is invalid") from None


def export_page(state: ZendeskState, base: str, *, start_time: str | None, cursor: str | None,
                per_page: int, include: str | None, hold_back: float = 0.0) -> dict[str, Any]:
    """Each changed ticket's latest state once, in change order, ``per_page`` at a time.

    Tickets changed within the last ``hold_back`` seconds are left out, and the cursor stays
    before them: "any items that were created or changed within the minute prior to your
    request are excluded" (developer.zendesk.com/documentation/ticketing/managing-tickets/
    using-the-incremental-export-api/; support.zendesk.com/hc/en-us/articles/8143500919322).
    """
    if cursor:
        after = decode_cursor(cursor)
        rows = [(r.seq, tid, r) for tid, r in state.tickets.items() if r.seq > after]
    elif start_time is not None:
        try:
            start = int(start_time)
        except ValueError:
            raise ApiError(400, "InvalidValue", "start_time must be a Unix epoch time") from None
        if start > state.clock().timestamp():
            raise ApiError(400, "InvalidValue", "start_time is in the future")
        after = 0
        rows = [(r.seq, tid, r) for tid, r in state.tickets.items()
                if r.updated_at.timestamp() >= start]
    else:
        raise ApiError(400, "InvalidValue", "start_time or cursor is required")
    rows.sort(key=lambda item: item[0])
    cutoff = state.clock().timestamp() - hold_back
    first_held = next((i for i, r in enumerate(rows) if r[2].updated_at.timestamp() > cutoff),
                      len(rows)) if hold_back > 0 else len(rows)
    rows, held = rows[:first_held], rows[first_held:]  # change order: what follows waits too
    page = rows[:per_page]
    if page:
        next_cursor = encode_cursor(page[-1][0], page[-1][1])
    elif held:  # stay before the tickets held back: they come with a later request
        next_cursor = cursor or encode_cursor(held[0][0] - 1, 0)
    else:
        next_cursor = cursor or encode_cursor(state.seq if not cursor else after, 0)
    tickets = [ticket_json(state, tid, row, base) for _, tid, row in page]
    return {"tickets": tickets, "after_cursor": next_cursor,
            "after_url": f"{base}/api/v2/incremental/tickets/cursor.json?cursor={next_cursor}",
            "before_cursor": None, "before_url": None, "end_of_stream": len(rows) <= per_page,
            **sideloads(state, tickets, include)}


# -- cursor pagination of plain lists (comments, audits, tickets, users) -------------------------
def cbp_page(items: list[Any], key: str, url: str, args: dict[str, str]) -> dict[str, Any]:
    """``page[size]``/``page[after]`` pagination; without ``page[size]``, offset style in one page."""
    if "page[size]" not in args:
        return {key: items, "next_page": None, "previous_page": None, "count": len(items)}
    size = max(1, min(100, int(args.get("page[size]") or 100)))
    start = int(decode_cursor(args["page[after]"])) if args.get("page[after]") else 0
    chunk = items[start:start + size]
    has_more = start + size < len(items)
    after = encode_cursor(start + size, 0) if chunk else None
    keep = {k: v for k, v in args.items() if not k.startswith("page[")}
    next_url = f"{url}?{urlencode({**keep, 'page[size]': size, 'page[after]': after})}" if has_more else None
    return {key: chunk, "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": None},
            "links": {"next": next_url, "prev": None}}


# -- users, organizations, ticket fields, jobs -------------------------------------------------------------------------
def lookup(table: dict[int, dict[str, Any]], key: int) -> dict[str, Any]:
    if key not in table:
        raise ApiError(404, "RecordNotFound", "Not found")
    return table[key]


def many(table: dict[int, dict[str, Any]], ids: str | None) -> list[dict[str, Any]]:
    """``show_many``: the known ones of up to 100 comma-separated ids."""
    wanted = [int(i) for i in (ids or "").split(",") if i.strip().isdigit()]
    return [table[i] for i in wanted[:100] if i in table]


def ticket_fields(state: ZendeskState, base: str) -> list[dict[str, Any]]:
    return [{"url": f"{base}/api/v2/ticket_fields/{f['id']}.json", "removable": not f.get("system"),
             "description": "", "required": False, "position": i, **f}
            for i, f in enumerate(state.fields.values())]


def job_json(job: dict[str, Any], base: str) -> dict[str, Any]:
    done = job["polls_left"] <= 0
    return {"id": job["id"], "url": f"{base}/api/v2/job_statuses/{job['id']}.json",
            "job_type": "bulk_update", "total": job["total"],
            "progress": job["total"] if done else 0,
            "status": "completed" if done else job["status"],
            "message": f"Completed at {job['finished_at']}" if done else None,
            "results": job["results"] if done else None}


# -- people in the UI, seeding and snapshots ----------------------------------------------------------------------
def ui_body(fields: dict[str, Any], comment: str | None, public: bool) -> dict[str, Any]:
    """An update body from flat keys (``custom_fields.<id>``, ``assignee.email``, attributes)."""
    body: dict[str, Any] = {}
    custom = []
    for key, value in fields.items():
        if key.startswith("custom_fields."):
            custom.append({"id": int(key.split(".", 1)[1]), "value": value})
        elif key == "assignee.email":
            body["assignee_email"] = value
        else:
            body[key] = value
    if custom:
        body["custom_fields"] = custom
    if comment:
        body["comment"] = {"body": comment, "public": public}
    return body


def seed(state: ZendeskState, fixture: dict[str, Any]) -> None:
    """Fixture: {ticket_fields: [...], organizations: [...], users: [...], tickets: [...]}."""
    if not any(f.get("system") for f in state.fields.values()):
        for number, (kind, title) in enumerate(SYSTEM_FIELDS, start=1):
            state.fields[360_000_000_000 + number] = {"id": 360_000_000_000 + number, "type": kind,
                                                      "title": title, "active": True, "system": True}
    for item in fixture.get("ticket_fields") or []:
        options = [{"id": int(item["id"]) * 100 + i, "name": o.get("name", o["value"]), **o}
                   for i, o in enumerate(item.get("custom_field_options") or [], start=1)]
        state.fields[int(item["id"])] = {"active": True, **item, "custom_field_options": options}
    for org in fixture.get("organizations") or []:
        state.organizations[int(org["id"])] = {"tags": [], "domain_names": [], **org}
    for user in fixture.get("users") or []:
        state.add_user(dict(user))
    for ticket in fixture.get("tickets") or []:
        _seed_ticket(state, dict(ticket))


def _seed_ticket(state: ZendeskState, t: dict[str, Any]) -> None:
    author = state.user_by_email(t.pop("submitter_email", None)) or state.acting_user(None)
    comments = t.pop("comments", [])
    created = parse_iso(t.pop("created_at", None))
    if "custom_fields" in t and isinstance(t["custom_fields"], dict):
        t["custom_fields"] = [{"id": int(k), "value": v} for k, v in t["custom_fields"].items()]
    if "description" in t:
        t["comment"] = {"body": t.pop("description"), "public": True}
    channel = (t.pop("via", None) or {}).get("channel", "web")
    row, _ = state.create_ticket(t, author, channel=channel, created_at=created)
    ticket_id = max(state.tickets)
    for comment in comments:
        who = state.user_by_email(comment.pop("author_email", None)) or author
        state.update_ticket(ticket_id, {"comment": comment}, who, channel="web")


def snapshot(state: ZendeskState) -> dict[str, Any]:
    def email(user_id: int | None) -> str | None:
        return (state.users.get(user_id) or {}).get("email") if user_id else None

    tickets = []
    for tid, row in sorted(state.tickets.items()):
        d = row.data
        tickets.append({
            "id": tid, "subject": d.get("subject"), "status": d["status"],
            "priority": d.get("priority"), "type": d.get("type"), "tags": list(d["tags"]),
            "external_id": d.get("external_id"), "requester": email(d["requester_id"]),
            "assignee": email(d.get("assignee_id")),
            "followers": [email(uid) for uid in d.get("follower_ids") or []],
            "organization": (state.organizations.get(d.get("organization_id")) or {}).get("name"),
            "via": d["via"]["channel"], "created_at": iso(row.created_at),
            "updated_at": state.stamp_text(row.updated_at),
            "custom_fields": {str(k): v for k, v in sorted(d["custom"].items()) if v is not None},
            "comments": [{"id": c["id"], "author": email(c["author_id"]), "body": c["body"],
                          "public": c["public"], "created_at": c["created_at"]} for c in row.comments],
            "links": []})
    return {"tickets": tickets,
            "users": [{"id": u["id"], "email": u.get("email"), "name": u.get("name"),
                       "role": u.get("role")} for u in state.users.values()],
            "organizations": [dict(o) for o in state.organizations.values()],
            "now": iso(state.clock() if state.clock else datetime.now(timezone.utc))}
