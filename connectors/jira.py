"""Jira Cloud connector on the ``jira`` library (REST API v2, Cloud search ``/search/jql``).

- Pull: ``project = X AND updated >= "<cursor minus overlap>" ORDER BY updated ASC`` listed with
  ``updated`` only, then the issues the cursor has not delivered read in bulk (``jira_changes``;
  ``jira_cursor`` for the overlap and de-duplication).
- Identity: records are keyed by the immutable issue id; the key (which changes when the issue
  moves to another project) is kept for display and refreshed on every read.
- Create: one ``POST /issue`` carrying the idempotency key as an issue property (atomic with
  the issue), then a remote link back to the origin (idempotent by globalId, repaired by a later
  cycle when it failed: ``jira_links``) and, when asked for, a status transition. Find by key:
  JQL on the property (or on a marker label); JQL is eventually consistent, so after a lost reply
  "not found" only counts once ``search_lag_seconds`` have passed.
- Status: through workflow transitions, several when there is no direct one, with the screen
  fields the mapping's ``transition_fields`` give (``jira_workflow``).
- Update: Jira has no ETag on issues; ``expected_version`` is checked by re-reading
  ``updated`` right before the write (a write landing between that read and ours is not
  detected: a window of one round trip). Status changes go through workflow transitions.
- Comments: internal notes always carry ``sd.public.comment = {"internal": true}``; the project
  type (``projectTypeKey``) decides how comments read, whatever ``service_management`` says.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Iterator

from connectors import jira_changes, jira_notify
from connectors.jira_attachments import JiraFiles, issue_files
from connectors.users import JiraUsers
from core.connector import Capabilities, Connector, OriginRef, Page, RemoteRecord, TrackerConfig
from connectors.registry import register
from connectors.jira_client import JiraApi
from connectors.jira_config import FIELD_PATH, JiraConfig
from connectors.jira_cursor import jql_minute, parse_jira_time, to_ms, zone
from connectors.jira_links import BackLinks
from connectors.jira_site import SERVICE_DESK, SiteFacts
from connectors.jira_view import FieldCatalog, comments_of, flat_view
from connectors.jira_workflow import Walker
from connectors.jira_writes import JiraWrites
from core.errors import BadRecord

log = logging.getLogger("tiersync.connectors.jira")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@register
class JiraConnector(JiraFiles, JiraUsers, Connector):
    kind: ClassVar[str] = "jira"
    config_model: ClassVar[type[TrackerConfig]] = JiraConfig
    field_path_pattern: ClassVar[re.Pattern[str]] = FIELD_PATH

    def __init__(self, name: str, config: JiraConfig):
        super().__init__(name, config)
        self.config: JiraConfig = config
        self.api = JiraApi(name, config)
        self.writes = JiraWrites(self)
        self.walker = Walker(self)
        self.links = BackLinks(self)
        self.site = SiteFacts(self.api)
        self.transition_fields: dict[str, dict[str, Any]] = {}
        self._catalog: FieldCatalog | None = None

    def use_mapping(self, mapping: Any) -> None:
        self.transition_fields = {str(k).lower(): dict(v) for k, v in
                                  (getattr(mapping, "transition_fields", None) or {}).items()}

    def transition_fields_for(self, status: str) -> dict[str, Any]:
        """The mapping's ``transition_fields`` for a target status (name, any case)."""
        return self.transition_fields.get(status.lower(), {})

    def status_id(self, ref: str) -> str | None:
        found = self.site.status(ref)
        return str(found["id"]) if found else None

    def status_category(self, ref: str) -> str:
        found = self.site.status(ref) or {}
        return str((found.get("statusCategory") or {}).get("key", ""))

    def is_service_desk_issue(self, ref: str) -> bool:
        """Whether the issue's project is a Jira Service Management project."""
        project = self.writes._read(ref).get("project") or {}
        self.site.remember_project(project)
        return self._service_desk(project)

    def _service_desk(self, project: dict[str, Any]) -> bool:
        """``projectTypeKey`` decides; the configuration only when Jira did not say."""
        kind = project.get("projectTypeKey") or self.site.known_type(str(project.get("key", "")))
        return kind == SERVICE_DESK if kind else self.config.service_management

    def repair(self) -> int:
        return self.links.repair()

    # -- reading --------------------------------------------------------------------------------
    @property
    def catalog(self) -> FieldCatalog:
        if self._catalog is None:
            self._catalog = FieldCatalog.from_fields(self.api.fields())
        return self._catalog

    def fetch_changes(self, cursor: str | None) -> Iterator[Page]:
        """A light listing of the change window, then the changed issues in bulk
        (``jira_changes``)."""
        return jira_changes.fetch_changes(self, cursor)

    def fetch_records(self, remote_ids: list[str]) -> list[RemoteRecord]:
        """The issues as they are now, 100 per bulk read; issues Jira does not return are left
        out."""
        ids = list(dict.fromkeys(str(r) for r in remote_ids))
        records = []
        for start in range(0, len(ids), jira_changes.BULK_FETCH):
            chunk = ids[start:start + jira_changes.BULK_FETCH]
            found = jira_changes.bulk_read(self, [{"id": ref} for ref in chunk])
            by_key = {str(raw.get("key")): raw for raw in found.values()}
            records += [self.record(found.get(ref) or by_key[ref]) for ref in chunk
                        if ref in found or ref in by_key]
        return records

    def _start(self) -> datetime:
        start = self.config.start_at
        if start == "epoch":
            return EPOCH
        return start if isinstance(start, datetime) else datetime.now(timezone.utc) - timedelta(days=30)

    def _changes_jql(self, window: datetime) -> str:
        tz = zone(self.config.time_zone or self.api.myself().get("timeZone"))
        return (f"project = {jql_string(self.config.project)} AND "
                f"updated >= {jql_string(jql_minute(window, tz))} ORDER BY updated ASC")

    def search(self, jql: str, token: str | None = None) -> dict[str, Any]:
        return self.api.retrying("search issues", lambda: self.api.client.enhanced_search_issues(
            jql, nextPageToken=token, maxResults=self.config.page_size, fields="*all",
            properties=self.config.property_key, json_result=True))

    def get(self, remote_id: str) -> RemoteRecord:
        return self.record(self.read_raw(remote_id))

    def read_raw(self, remote_id: str) -> dict[str, Any]:
        """Get issue, every field and the ``tiersync`` property, as Jira answers it."""
        return self.api.retrying(f"read issue {remote_id}", lambda: self.api.client.issue(
            remote_id, fields="*all", properties=self.config.property_key).raw)

    def find_by_idempotency_key(self, idempotency_key: str) -> RemoteRecord | None:
        return self.find_by_idempotency_keys([idempotency_key]).get(idempotency_key)

    def find_by_idempotency_keys(self, idempotency_keys: list[str]) -> dict[str, RemoteRecord]:
        """One JQL search (``in``, oldest first) per ``LOOKUP_CHUNK`` keys, every page of it;
        the oldest issue per key (several: logged)."""
        keys = list(dict.fromkeys(idempotency_keys))
        matches: dict[str, list[RemoteRecord]] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start:start + LOOKUP_CHUNK]
            for record in self._search_all(f"{self._key_clause(chunk)} ORDER BY created ASC"):
                if record.idempotency_key in chunk:
                    matches.setdefault(record.idempotency_key, []).append(record)
        for key, found in matches.items():
            if len(found) > 1:
                log.warning("%s: %d issues carry idempotency key %s (%s); using the oldest",
                            self.name, len(found), key, ", ".join(r.id for r in found))
        return {key: found[0] for key, found in matches.items()}

    def _key_clause(self, keys: list[str]) -> str:
        if self.config.idempotency_lookup == "label":
            values = [jql_string(self.marker_label(k)) for k in keys]
            field = "labels"
        else:
            values, field = [jql_string(k) for k in keys], f"issue.property[{self.config.property_key}].key"
        return f"{field} = {values[0]}" if len(values) == 1 else f"{field} in ({', '.join(values)})"

    def _search_all(self, jql: str) -> list[RemoteRecord]:
        records, token = [], None
        while True:
            result = self.search(jql, token)
            records += [self.record(raw) for raw in result.get("issues") or []]
            token = result.get("nextPageToken")
            if not token or result.get("isLast"):
                return records

    def _identity(self, raw: dict[str, Any]) -> tuple[str, str, int]:
        """(id, key, updated in ms) of an issue; BadRecord when one is missing."""
        issue_id, key, updated = raw.get("id"), raw.get("key"), (raw.get("fields") or {}).get("updated")
        try:
            if not issue_id or not key:
                raise ValueError("no id or key")
            return str(issue_id), str(key), to_ms(parse_jira_time(updated))
        except ValueError:
            raise BadRecord(f"issue {key or issue_id} without an id, a key or a readable 'updated' "
                            f"({updated!r})",
                            tracker=self.name, record_id=str(issue_id or key)) from None

    def record(self, raw: dict[str, Any]) -> RemoteRecord:
        issue_id, key, _ = self._identity(raw)
        fields = raw.get("fields") or {}
        updated = fields["updated"]
        marker = (raw.get("properties") or {}).get(self.config.property_key)
        self.links.notice(issue_id, marker, (fields.get("status") or {}).get("name"))
        project = fields.get("project") or {}
        self.site.remember_project(project)
        hide = self.is_marker_label if self.config.idempotency_lookup == "label" else (lambda _l: False)
        return RemoteRecord(
            tracker=self.name, id=issue_id, key=key, version=updated,
            updated_at=parse_jira_time(updated), data=_walk_hidden(flat_view(fields, self.catalog, hide), marker),
            url=f"{self.config.base_url.rstrip('/')}/browse/{key}",
            comments=comments_of(self._all_comments(issue_id, fields.get("comment")),
                                 service_management=self._service_desk(project)),
            idempotency_key=marker.get("key") if isinstance(marker, dict) else None,
            attachments=issue_files(fields))

    def _all_comments(self, key: str, field: dict[str, Any] | None) -> list[dict[str, Any]]:
        comments = list((field or {}).get("comments") or [])
        if field is not None and int(field.get("total", len(comments))) <= len(comments):
            return comments
        return self.list_comments(key)

    def list_comments(self, key: str) -> list[dict[str, Any]]:
        """Every comment of an issue, with its properties (paged)."""
        comments: list[dict[str, Any]] = []
        while True:
            page = self.api.retrying(f"list comments of {key}", lambda: self.api.get_json(
                f"issue/{key}/comment", {"startAt": len(comments), "maxResults": 100,
                                         "expand": "properties"}))
            comments.extend(page.get("comments") or [])
            if not page.get("comments") or len(comments) >= int(page.get("total", 0)):
                return comments

    def marker_label(self, idempotency_key: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.:-]", "_", f"{self.config.property_key}-{idempotency_key}")[:255]

    def is_marker_label(self, label: str) -> bool:
        return label.startswith(f"{self.config.property_key}-")

    # -- writing (connectors/jira_writes.py) ---------------------------------------------------
    def create(self, fields: dict[str, Any], *, idempotency_key: str,
               origin: OriginRef | None = None) -> RemoteRecord:
        return self.get(self.writes.create(fields, idempotency_key, origin))

    def update(self, remote_id: str, fields: dict[str, Any], *,
               expected_version: str | None) -> RemoteRecord:
        self.writes.update(remote_id, fields, expected_version)
        return self.get(remote_id)

    def add_comment(self, remote_id: str, body: str, *, public: bool,
                    notify: tuple[str, ...] = ()) -> str:
        people = jira_notify.accounts(self, notify) if notify else []
        comment_id = self.writes.add_comment(remote_id, jira_notify.with_mentions(body, people),
                                             public)
        jira_notify.add_watchers(self, remote_id, people)
        return comment_id

    def capabilities(self) -> Capabilities:
        known = self.site.known_type(self.config.project)
        sm = known == SERVICE_DESK if known else self.config.service_management
        return Capabilities(
            public_comments=sm, internal_comments=True, transitions=True,
            optimistic_concurrency=True, bulk_update=False, state_categories=True,
            max_page_size=self.config.page_size, lookup_lag_seconds=self.config.search_lag_seconds,
            update_reads_record=True, version_order="time",
            extra={"service_management": sm, "idempotency_lookup": self.config.idempotency_lookup,
                   "concurrency": "emulated: 'updated' is re-read right before each write"})

    def check_online(self, field_paths: list[str], values: dict[str, list[Any]]) -> list[str]:
        from connectors.jira_check import check_online

        return check_online(self, field_paths, values)

    def close(self) -> None:
        self.api.close()


LOOKUP_CHUNK = 50  # idempotency keys per JQL search


def _walk_hidden(data: dict[str, Any], marker: Any) -> dict[str, Any]:
    """While tiersync walks the issue through other statuses (``walking`` in its marker, see
    ``JiraWrites.transition``), the status it came from: an interrupted walk is not a change."""
    walking = marker.get("walking") if isinstance(marker, dict) else None
    if isinstance(walking, dict) and walking.get("from") and data.get("status") != walking.get("to"):
        data.update({"status": walking["from"], "status.category": walking.get("from_category")})
    return data


def jql_string(value: str) -> str:
    """A JQL string literal."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
