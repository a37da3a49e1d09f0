"""Reading Jira's changes in two steps: a light listing, then the changed issues in bulk.

Rules:
- The change query (``jira_cursor``: ``updated >=`` the cursor minus the overlap, floored to the
  minute) is sent as a *listing*: ``search/jql`` with ``fields=updated`` only, no properties
  (Atlassian, spec ``maxResults``: "API may return fewer items per page where a large number of
  fields or properties are requested. The greatest number of items returned per page is achieved
  when requesting id or key only. It returns max 5000 issues."). ``maxResults`` asks for the
  5000; whatever page size Jira answers with is followed by ``nextPageToken``.
- Issues of the listing whose ``updated`` the cursor already delivered (the overlap re-reads
  every issue changed in the last ``overlap_minutes``) are dropped there, so an idle cycle after a
  wave costs the listing and nothing else. The others are read in full with
  ``POST /issue/bulkfetch`` (spec ``bulkFetchIssues``: "You can request up to 100 issues"; issues
  that are not found are left out), ``fields=*all`` and the ``tiersync`` property, ``page_size``
  (at most 100) per request, and delivered in the listing's order, one page per bulk read.
- A listing page with a next page is followed by its token while the cursor's window stays; when
  the window moved, the listing starts again from it (a token walks a list that shifts when an
  issue is edited during the scan). A last listing page delivered in several pages is listed
  once more, so that an issue edited while the earlier pages were read is delivered in this scan;
  a listing with nothing new ends the scan.
- The cursor moves by what was delivered (``jira_records.read_page``): a page's cursor never
  claims an issue of a later bulk read. An issue the listing named and the bulk read did not
  return (deleted, moved out of sight) is passed over. An issue the bulk read reports in
  ``issueErrors`` (spec: "a retriable error or payload constraint") is read on its own with
  Get issue; an issue that cannot be read that way either stops the pull (the cursor stays
  before it), as any failed read does.
- Comments come from the issue's ``comment`` field; when it holds fewer than its ``total``
  (Jira embeds a page of them) the issue's comment list is read (``JiraConnector.record``).
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Iterator

from core.connector import Page
from core.errors import NotFound
from connectors.jira_cursor import ChangeCursor
from connectors.jira_records import identity_of, read_page

if TYPE_CHECKING:
    from connectors.jira import JiraConnector

LISTING_PAGE = 5000  # asked for; Jira may answer with fewer (the simulator: 1000)
BULK_FETCH = 100  # issues per POST /issue/bulkfetch


def fetch_changes(connector: "JiraConnector", cursor: str | None) -> Iterator[Page]:
    state = ChangeCursor.decode(cursor, connector._start())
    overlap = timedelta(minutes=connector.config.overlap_minutes)
    size = min(connector.config.page_size, BULK_FETCH)
    window, token = state.window_start(overlap), None
    unreadable_seen: set[str] = set()  # listed without a readable identity, delivered this scan
    while True:
        result = listing(connector, connector._changes_jql(window), token)
        wanted = [raw for raw in result.get("issues") or []
                  if _is_new(connector, raw, state) and _as_listed(raw) not in unreadable_seen]
        for start in range(0, len(wanted), size):
            chunk = wanted[start:start + size]
            full = bulk_read(connector, chunk)
            raws, gone = [], []
            for raw in chunk:
                identity = identity_of(connector, raw)
                if identity is None:
                    unreadable_seen.add(_as_listed(raw))
                if _ref(raw) in full:
                    raws.append(full[_ref(raw)])
                elif identity is None:  # unreadable as listed: reported as it is
                    raws.append(raw)
                else:  # listed, but gone by the time it was read: nothing to deliver
                    gone.append(identity)
            fresh, unreadable = read_page(connector, raws, state)
            for identity in gone:
                if state.is_new(*identity):
                    state.accept(*identity)
            state.prune(overlap)
            if fresh or unreadable:
                yield Page(records=fresh, cursor=state.encode(), unreadable=unreadable)
        token = None if result.get("isLast") else result.get("nextPageToken")
        moved = state.window_start(overlap) > window
        if token and not moved:
            continue
        if not (token or len(wanted) > size):
            return
        # the window moved (a token walks a list that shifts when an issue is edited during the
        # scan), or this listing was delivered in several pages, while which an issue it named
        # may have been edited again: list again from the cursor, so that no edit made before
        # the last page was read waits for the next scan
        window, token = state.window_start(overlap), None


def listing(connector: "JiraConnector", jql: str, token: str | None) -> dict[str, Any]:
    """One page of the change query with ``updated`` only (``GET /search/jql``, on the
    library's session; its ``enhanced_search_issues`` would first read the field list to
    translate field names, which ``updated`` does not need)."""
    params: dict[str, Any] = {"jql": jql, "fields": "updated", "maxResults": LISTING_PAGE}
    if token:
        params["nextPageToken"] = token
    return connector.api.retrying("list changed issues",
                                  lambda: connector.api.get_json("search/jql", params))


def bulk_read(connector: "JiraConnector", listed: list[Any]) -> dict[str, dict[str, Any]]:
    """The listed issues in full, by id (``POST /issue/bulkfetch``); ``issueErrors`` read one by
    one (Get issue); issues Jira did not return are left out."""
    refs = [ref for ref in dict.fromkeys(_ref(raw) for raw in listed) if ref]
    if not refs:
        return {}
    api, config = connector.api, connector.config
    body = {"issueIdsOrKeys": refs, "fields": ["*all"], "properties": [config.property_key],
            "fieldsByKeys": False}
    reply = api.retrying(f"read {len(refs)} issues", lambda: api.post_json("issue/bulkfetch", body))
    found = {str(raw.get("id")): raw for raw in reply.get("issues") or [] if isinstance(raw, dict)}
    for problem in reply.get("issueErrors") or []:
        ref = str((problem or {}).get("id") or "")
        if ref and ref not in found:
            try:
                found[ref] = connector.read_raw(ref)
            except NotFound:
                continue
    return found


def _as_listed(raw: Any) -> str:
    return repr(raw)[:2000]


def _ref(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    return str(raw.get("id") or raw.get("key") or "") or None


def _is_new(connector: "JiraConnector", raw: Any, state: ChangeCursor) -> bool:
    identity = identity_of(connector, raw)
    return identity is None or state.is_new(*identity)
