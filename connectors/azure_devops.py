"""Azure DevOps Boards connector: "Engagement Item" work items (seed 000) on the azure-devops SDK.

Reads changes with WIQL on ``[System.ChangedDate]`` and ``workitemsbatch`` (connectors/
azure_devops_feed.py), writes with JSON Patch guarded by ``test /rev`` and without notifications,
stores the idempotency key as a ``tiersync:<key>`` tag (or in a configured field) and links the
work item back to its origin with a Hyperlink relation. docs/azure_devops.md has the details.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Iterator
from urllib.parse import quote

from azure.devops.v7_1.work_item_tracking import (CommentCreate, TeamContext, Wiql,
                                                  WorkItemBatchGetRequest)

from connectors import azure_devops_view as view
from connectors.azure_devops_client import WitClient
from connectors.azure_devops_config import FIELD_PATH, AzureDevOpsConfig
from connectors.azure_devops_notify import IdentityApi, Mentions, identity_base
from connectors.azure_devops_feed import EPOCH, ChangeFeed, Cursor, floor_second, wiql_text
from connectors.azure_devops_history import (FIELDS as STREAM_FIELDS, PAGE as STREAM_PAGE, Ref,
                                             RevisionStream, StreamUnusable, proven_comments)
from connectors.azure_devops_online import check_online
from connectors.azure_devops_attachments import AzureDevOpsFiles, item_files
from connectors.users import AzureDevOpsUsers
from core.connector import (Capabilities, Connector, OriginRef, Page, RemoteComment, RemoteRecord,
                            TrackerConfig)
from connectors.registry import register
from connectors.records import MISSING, build_each
from connectors.retry import call_with_retry
from core.errors import (Conflict, NotFound, PermanentError, RateLimited, Retryable,
                         UnknownOutcome)
from core.secrets import read_secret

COMMENT_LOOKBACK = timedelta(minutes=5)  # clock skew allowed when looking for our own comment
LOOKUP_CHUNK = 50  # idempotency keys per WIQL query (a query's text stays far below 32K)
log = logging.getLogger("tiersync.azure_devops")


@register
class AzureDevOpsConnector(AzureDevOpsFiles, AzureDevOpsUsers, Connector):
    kind: ClassVar[str] = "azure_devops"
    config_model: ClassVar[type[TrackerConfig]] = AzureDevOpsConfig
    field_path_pattern = FIELD_PATH

    def __init__(self, name: str, config: AzureDevOpsConfig):
        super().__init__(name, config)
        self.config: AzureDevOpsConfig = config
        self._client: WitClient | None = None
        self._mentions: Mentions | None = None
        self._categories: dict[str, dict[str, str]] = {}  # work item type -> state -> category
        self._reread: set[str] = set()  # types whose states were read again for an unknown state
        # the latest pull's position and page, for the comments of a page from the revisions
        # stream (connectors/azure_devops_history.py)
        self._resumed_at: datetime | None = None
        self._origin: datetime | None = None  # the cursor's: where the feed's first pull started
        self._stream: RevisionStream | None = None
        self._page: dict[str, str] = {}  # id -> rev of the latest page's records
        self._refs: dict[str, Ref] = {}  # id -> the page batch's commentVersionRef
        self._delivered: dict[str, int] = {}  # id -> rev the resumed cursor says was delivered

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def client(self) -> WitClient:
        if self._client is None:
            pat = read_secret(self.config.pat_env, tracker=self.name,
                              purpose="the Azure DevOps personal access token")
            self._client = WitClient(self.config.base_url, pat, tracker=self.name,
                                     credential=f"the Azure DevOps PAT in {self.config.pat_env}",
                                     timeout=self.config.timeout_seconds,
                                     max_wait=self.config.max_wait_seconds)
        return self._client

    @property
    def mentions(self) -> Mentions:
        if self._mentions is None:
            pat = read_secret(self.config.pat_env, tracker=self.name,
                              purpose="the Azure DevOps personal access token")
            api = IdentityApi(identity_base(self.config.base_url, self.config.identity_url), pat,
                              tracker=self.name,
                              credential=f"the Azure DevOps PAT in {self.config.pat_env}",
                              timeout=self.config.timeout_seconds)
            self._mentions = Mentions(api, self.name)
        return self._mentions

    def _retry(self, fn: Any, what: str) -> Any:
        return call_with_retry(fn, max_attempts=self.config.max_attempts,
                               max_wait=self.config.max_wait_seconds, what=f"{self.name}: {what}")

    def _url(self, item_id: int) -> str:
        return f"{self.config.base_url}/{quote(self.config.project)}/_workitems/edit/{item_id}"

    def categories(self, type_name: str) -> dict[str, str]:
        if type_name not in self._categories:
            states = self._retry(lambda: self.client.get_work_item_type_states(
                self.config.project, type_name), f"states of {type_name}")
            self._categories[type_name] = {s.name: s.category for s in states}
        return self._categories[type_name]

    def _record(self, item: Any, comments: tuple[RemoteComment, ...] = ()) -> RemoteRecord:
        fields = item.fields or {}
        type_name = fields.get("System.WorkItemType")  # never guessed: requested with every read
        state = fields.get("System.State")
        categories = self.categories(type_name) if type_name else {}
        if type_name and state is not None and state not in categories and type_name not in self._reread:
            self._reread.add(type_name)  # the process changed since we read it: once more
            self._categories.pop(type_name, None)
            categories = self.categories(type_name)
        return RemoteRecord(
            tracker=self.name, id=str(item.id), version=str(item.rev),
            updated_at=view.parse_date(fields.get("System.ChangedDate") or EPOCH),
            data=view.flatten(fields, categories, self.config.html_fields), url=self._url(item.id),
            comments=comments, idempotency_key=view.marker_of(fields, self.config.marker_field),
            attachments=item_files(getattr(item, "relations", None)))

    def _with_comments(self, item: Any) -> RemoteRecord:
        wanted = self.config.read_comments and (item.fields or {}).get("System.CommentCount", 1)
        return self._record(item, self._comments(item.id) if wanted else ())

    def _comments(self, item_id: int) -> tuple[RemoteComment, ...]:
        out: list[RemoteComment] = []
        token = None
        while True:
            page = self._retry(lambda: self.client.get_comments(
                self.config.project, item_id, top=200, continuation_token=token, order="asc"),
                f"comments of {item_id}")
            out.extend(view.comment(c) for c in page.comments or [] if not c.is_deleted)
            token = page.continuation_token
            if not token:
                return tuple(out)

    def _batch(self, ids: list[int], as_of: datetime | None) -> list[Any]:
        request = WorkItemBatchGetRequest(ids=ids, as_of=as_of, error_policy="omit",
                                          expand="relations")  # AttachedFile relations
        return self._retry(lambda: self.client.get_work_items_batch(request, project=self.config.project),
                           f"batch of {len(ids)} work items")

    # -- reading --------------------------------------------------------------------------------
    def _start(self) -> datetime:
        start = self.config.start_at
        if start == "epoch":
            return EPOCH
        return floor_second(start or datetime.now(timezone.utc) - timedelta(days=30))

    def _types(self) -> list[str]:
        return ([self.config.work_item_type] if self.config.fetch_types is None
                else self.config.fetch_types)

    def fetch_changes(self, cursor: str | None) -> Iterator[Page]:
        resumed = Cursor.decode(cursor) if cursor else None
        start = self._start()
        state = resumed or Cursor(start, origin=start)
        if state.origin is None:  # a cursor from before origins: every item created from now on
            state.origin = state.since
        # every change after a saved cursor's position is delivered by this pull, so the
        # revisions stream from there holds the comments items got since tiersync read them;
        # a pull without a cursor has no such position (comment lists are read)
        self._resumed_at = resumed.since if resumed is not None else None
        self._origin = state.origin
        self._delivered = {k: int(v[0]) for k, v in resumed.seen.items()} if resumed else {}
        self._stream, self._page, self._refs = None, {}, {}
        feed = ChangeFeed(self.client, self.config.project, self._types(),
                          page_size=self.config.page_size, cap=self.config.wiql_max_results,
                          fetch_batch=self._batch)
        for items, position in feed.pages(state):
            records, unreadable = build_each(self.name, items, self._record, ident=_ident,
                                             shape=ITEM_SHAPE, plain=_plain)
            self._page = {r.id: r.version for r in records}
            self._refs = {str(i.id): Ref(i.comment_version_ref.comment_id, i.comment_version_ref.version,
                                         bool(i.comment_version_ref.is_deleted))
                          for i in items if getattr(i, "comment_version_ref", None) is not None}
            yield Page(records=records, cursor=position.encode(), unreadable=unreadable)

    def _known(self, record: RemoteRecord) -> bool:
        """Whether tiersync read ``record`` with its comments since its creation: a mirror it
        made (its marker) created after the feed's first pull started."""
        if record.idempotency_key is None or self._origin is None:
            return False
        try:
            return view.parse_date(record.data.get("System.CreatedDate")) >= self._origin
        except (TypeError, ValueError):
            return False

    def load_details(self, records: list[RemoteRecord]) -> list[RemoteRecord]:
        """The records with their comments (read only for the records the engine asks for):
        none for an item whose ``System.CommentCount`` is 0 (a mirror just created); those the
        revisions stream proves complete for the latest page's items, for all of them in a
        request or two (connectors/azure_devops_history.py); any other item's from its list."""
        if not self.config.read_comments:
            return records
        wanted = [r for r in records if r.data.get("System.CommentCount") != 0]
        streamed = self._streamed_comments([r for r in wanted if self._page.get(r.id) == r.version])
        return [r if r.data.get("System.CommentCount") == 0
                else replace(r, comments=streamed[r.id]) if r.id in streamed
                else replace(r, comments=self._comments_if_found(int(r.id))) for r in records]

    def _streamed_comments(self, records: list[RemoteRecord]) -> dict[str, tuple[RemoteComment, ...]]:
        """Comments of ``records`` the revisions stream proves complete, by id; the others are
        left out (their lists are read)."""
        if not records or self._resumed_at is None:
            return {}
        try:
            if self._stream is None:
                self._stream = RevisionStream(self._resumed_at, self._read_revisions)
            self._stream.read_through(max(r.updated_at for r in records))
        except StreamUnusable as exc:
            log.info("%s: reading comment lists instead of the revisions stream: %s", self.name, exc)
            self._resumed_at = None
            return {}
        except (Retryable, PermanentError, NotFound) as exc:  # the lists still give every comment
            log.warning("%s: the revisions stream failed, reading comment lists: %s", self.name, exc)
            return {}
        found: dict[str, tuple[RemoteComment, ...]] = {}
        for record in records:
            comments = proven_comments(self._stream.revisions.get(int(record.id), {}),
                                       int(record.version), record.data.get("System.CommentCount"),
                                       known=self._known(record),
                                       delivered=self._delivered.get(record.id, 0),
                                       last_ref=self._refs.get(record.id))
            if comments is not None:
                found[record.id] = comments
        log.debug("%s: %d of %d items' comments from the revisions stream", self.name, len(found),
                  len(records))
        return found

    def _read_revisions(self, token: str | None, start: datetime | None) -> Any:
        return self._retry(lambda: self.client.reporting_revisions(
            self.config.project, fields=STREAM_FIELDS, types=self._types() or None,
            continuation_token=token, start_date_time=start, max_page_size=STREAM_PAGE),
            "reporting revisions")

    def _comments_if_found(self, item_id: int) -> tuple[RemoteComment, ...]:
        """An item deleted since the batch was read has no comments, not an error that would
        stop the feed."""
        try:
            return self._comments(item_id)
        except NotFound:
            return ()

    def get(self, remote_id: str) -> RemoteRecord:
        if not str(remote_id).isdigit():
            raise NotFound(f"work item {remote_id!r} is not a work item id", tracker=self.name)
        item = self._retry(lambda: self.client.get_work_item(
            int(remote_id), project=self.config.project, expand="relations"), f"get {remote_id}")
        return self._with_comments(item)

    def find_by_idempotency_key(self, idempotency_key: str) -> RemoteRecord | None:
        return self.find_by_idempotency_keys([idempotency_key]).get(idempotency_key)

    def find_by_idempotency_keys(self, idempotency_keys: list[str]) -> dict[str, RemoteRecord]:
        """One WIQL query per ``LOOKUP_CHUNK`` keys (``IN`` on the marker field, or an ``OR``
        group of tag tests), then the matching items in batches; the oldest item per key."""
        keys = list(dict.fromkeys(idempotency_keys))
        found: dict[str, RemoteRecord] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start:start + LOOKUP_CHUNK]
            for item in self._items(self._lookup_ids(chunk)):
                key = view.marker_of(item.fields or {}, self.config.marker_field)
                if key in chunk and key not in found:
                    found[key] = self._record(item)
        return found

    def _lookup_ids(self, keys: list[str]) -> list[int]:
        if self.config.marker_field:
            values = ", ".join(map(wiql_text, keys))
            clause = f"[{self.config.marker_field}] " + (f"= {values}" if len(keys) == 1 else f"IN ({values})")
        else:
            tests = [f"[System.Tags] CONTAINS {wiql_text(view.marker_tag(k))}" for k in keys]
            clause = tests[0] if len(tests) == 1 else f"({' OR '.join(tests)})"
        query = Wiql(query="SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
                           f"AND {clause} ORDER BY [System.Id] ASC")
        result = self._retry(lambda: self.client.query_by_wiql(
            query, team_context=TeamContext(project=self.config.project), top=200),
            f"find {len(keys)} idempotency key(s)")
        return [ref.id for ref in result.work_items or []]

    def _items(self, ids: list[int]) -> list[Any]:
        """Work items by id in batches of 200 (the batch read's limit); missing ones left out."""
        items: list[Any] = []
        for start in range(0, len(ids), 200):
            items += [i for i in self._batch(ids[start:start + 200], None) if i is not None]
        return items

    # -- writing --------------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], *, idempotency_key: str,
               origin: OriginRef | None = None) -> RemoteRecord:
        fields = dict(fields)
        type_name = fields.pop("System.WorkItemType", None) or self.config.work_item_type
        if self.config.marker_field:
            fields[self.config.marker_field] = idempotency_key
            ops = view.patch_ops(fields, self.config.html_fields)
        else:
            fields.setdefault("System.Tags", [])
            ops = view.patch_ops(fields, self.config.html_fields,
                                 keep_tags=[view.marker_tag(idempotency_key)])
        if origin is not None and origin.url:
            note = f"tiersync origin: {origin.tracker} {origin.remote_id}"
            ops.append(view.hyperlink_op(origin.url, f"{note} - {origin.title}" if origin.title else note))
        sent = False

        def attempt() -> RemoteRecord:
            nonlocal sent
            if sent:  # the last try may have created it: look before sending again
                found = self.find_by_idempotency_key(idempotency_key)
                if found is not None:
                    log.info("%s: create %s had already happened as %s", self.name, idempotency_key, found.id)
                    return found
            sent = True
            item = self.client.create_work_item(ops, self.config.project, type_name,
                                                suppress_notifications=True)
            return self._record(item)

        return self._retry(attempt, f"create {idempotency_key}")

    def update(self, remote_id: str, fields: dict[str, Any], *,
               expected_version: str | None) -> RemoteRecord:
        keep: list[str] = []
        if "System.Tags" in fields and not self.config.marker_field:
            current = self.get(remote_id)
            keep = [view.marker_tag(current.idempotency_key)] if current.idempotency_key else []
        ops = view.patch_ops(fields, self.config.html_fields, keep_tags=keep)
        if not ops:
            record = self.get(remote_id)
            if expected_version is not None and record.version != str(expected_version):
                raise Conflict(f"work item {remote_id} is at rev {record.version}, not "
                               f"{expected_version}", tracker=self.name, status=412)
            return record
        if expected_version is not None:
            ops.insert(0, view.rev_test(expected_version))
        item = self._retry(lambda: self.client.update_work_item(
            ops, int(remote_id), project=self.config.project, suppress_notifications=True),
            f"update {remote_id}")
        return self._record(item)

    def add_comment(self, remote_id: str, body: str, *, public: bool,
                    notify: tuple[str, ...] = ()) -> str:
        """Comments API (Comments - Add): one POST, no ``test /rev``, so a comment never meets a
        rev conflict and needs no read first (docs/azure_devops.md, "Comments"). After an
        unknown outcome the comments are read back before sending again. ``notify``: the people
        are @mentioned in it, and Azure DevOps notifies whom a comment mentions
        (connectors/azure_devops_notify.py)."""
        markup = view.text_to_html(body)
        if notify:
            line, _mentioned = self.mentions.html(notify)
            markup = f"{markup}<br><br>{line}"
        text = view.html_to_text(markup)  # how the comment reads back
        if public:
            log.debug("%s: Azure DevOps has no public comments; writing an internal one", self.name)
        since = datetime.now(timezone.utc) - COMMENT_LOOKBACK
        unknown = False

        def attempt() -> str:
            nonlocal unknown
            if unknown:  # the last try may have landed: look before resending
                found = self._find_comment(int(remote_id), text, since)
                if found is not None:
                    return found
            try:
                comment = self.client.add_comment(CommentCreate(text=markup),
                                                  self.config.project, int(remote_id))
            except RateLimited:
                raise  # refused before processing: safe to send again
            except Retryable as exc:
                unknown = True
                raise UnknownOutcome(f"comment on {remote_id} has an unknown outcome: {exc}",
                                     tracker=self.name, status=exc.status) from exc
            return str(comment.id)

        return self._retry(attempt, f"comment on {remote_id}")

    def _find_comment(self, item_id: int, body: str, after: datetime) -> str | None:
        matches = [c for c in self._comments(item_id) if c.body == body and c.created_at > after]
        return matches[-1].id if matches else None

    # -- the rest -------------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities(public_comments=False, internal_comments=True, transitions=False,
                            optimistic_concurrency=True, bulk_update=False, state_categories=True,
                            max_page_size=self.config.page_size, version_order="counter",
                            extra={"marker": self.config.marker_field or "tag",
                                   "state_category_path": view.STATE_CATEGORY})

    def check_online(self, field_paths: list[str], values: dict[str, list[Any]]) -> list[str]:
        return check_online(self, field_paths, values)

    def close(self) -> None:
        if self._client is not None:
            self._client._client.close()
            self._client = None


# what a work item must look like before it is built (connectors/records.py)
ITEM_SHAPE: dict[str, tuple[Any, ...]] = {
    "id": (int,), "rev": (int,), "fields": (dict,), "fields.System.ChangedDate": (str, MISSING),
    "fields.System.WorkItemType": (str, MISSING), "fields.System.State": (str, MISSING),
    "fields.System.Title": (str, type(None), MISSING)}


def _plain(item: Any) -> dict[str, Any]:
    """A work item model as plain data (for the shape check and the quarantine payload)."""
    return {"id": getattr(item, "id", None), "rev": getattr(item, "rev", None),
            "fields": getattr(item, "fields", None)}


def _ident(item: Any) -> tuple[Any, Any]:
    return getattr(item, "id", None), getattr(item, "rev", None)
