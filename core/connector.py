"""The one interface every tracker connector implements, and the records it moves.

A connector moves tracker records in and out over the tracker's API and nothing else: no
mapping, no policy. Records travel as a *flat native view*: a dict keyed by the field paths the
mapping files use (``subject``, ``custom_fields.360001``; ``summary``, ``customfield_10010``;
``System.Title``, ``Custom.SRNumber``). Each connector translates that view to and from its API.

This is core's side of the boundary: ``core/`` uses only these names, ``connectors/`` implement
them (dependencies point one way: connectors -> core). Which connector class serves which
``kind`` is wiring, outside core (``wiring.py``).
"""
from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Iterator, Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.errors import NotFound, PermanentError
from core.webhook_config import WebhookConfig

# Comments tiersync writes start with this, so that reading them back never copies them again.
TIERSYNC_COMMENT_MARK = "[tiersync]"


@dataclass(frozen=True)
class RemoteComment:
    id: str
    body: str
    public: bool
    created_at: datetime
    author: str | None = None


@dataclass(frozen=True)
class RemoteAttachment:
    """A file on a tracker record, as the tracker lists it (content not read)."""

    id: str  # the tracker's attachment id (Zendesk attachment id, Jira id, Azure DevOps guid)
    name: str
    url: str  # where the content is read (with the connector's credentials)
    content_type: str | None = None
    size: int | None = None
    inline: bool = False  # an inline image of a comment
    comment_id: str | None = None  # the comment it came with (Zendesk)
    sha256: str | None = None  # when the tracker states it (tiersync's own copies)


@dataclass(frozen=True)
class RemoteRecord:
    """One tracker record as read from the tracker."""

    tracker: str  # connector name from the configuration
    id: str  # remote id (Zendesk ticket id, Jira issue id, Azure DevOps work item id)
    version: str  # remote version: updated_at, Jira 'updated', Azure DevOps rev
    updated_at: datetime  # timezone-aware
    data: dict[str, Any]  # flat native view keyed by mapping field paths
    key: str | None = None  # human key where it differs from id
    url: str | None = None
    comments: tuple[RemoteComment, ...] = ()
    idempotency_key: str | None = None  # tiersync marker stored on the record, if any
    attachments: tuple[RemoteAttachment, ...] = ()  # files on the record (core/attachments.py)

    @property
    def ref(self) -> str:
        return f"{self.tracker}:{self.key or self.id}"


def replaced(record: RemoteRecord, **changes: Any) -> RemoteRecord:
    """``dataclasses.replace(record, **changes)`` for a record (no ``__post_init__``, every
    field an init field): a shallow copy with ``changes``, a quarter of the cost (it runs for
    every record read)."""
    kind = type(record)
    if not changes.keys() <= kind.__dataclass_fields__.keys():
        raise TypeError(f"{kind.__name__} has no field(s) "
                        f"{sorted(set(changes) - set(kind.__dataclass_fields__))}")
    copy = object.__new__(kind)
    fields = copy.__dict__
    fields.update(record.__dict__)
    fields.update(changes)
    return copy


@dataclass
class Page:
    """One page of changes and the cursor to resume *after* it."""

    records: list[RemoteRecord]
    cursor: str | None
    stream: str = "records"
    # records the connector could not build (UnreadableRecord): quarantined, not fatal
    unreadable: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class UnreadableRecord:
    """A tracker record the connector could not build; the engine quarantines it."""

    tracker: str
    id: str
    version: str | None
    reason: str
    payload: Any = None  # the raw record (plain data) as far as it can be shown

    @property
    def ref(self) -> str:
        return f"{self.tracker}:{self.id}"


@dataclass(frozen=True)
class OriginRef:
    """Where a mirror record came from, for the back link a connector creates."""

    tracker: str
    remote_id: str
    url: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Capabilities:
    public_comments: bool = True
    internal_comments: bool = True
    transitions: bool = False  # status changes need workflow transitions
    optimistic_concurrency: bool = True
    bulk_update: bool = False
    state_categories: bool = False
    max_page_size: int = 100
    # seconds a created record may take to be found by find_by_idempotency_key (a search index)
    lookup_lag_seconds: float = 0.0
    # ``write`` sends fields and a comment as one version-checked update (Zendesk's ticket
    # update carries ``ticket.comment``; ``safe_update`` refuses it whole when the record moved)
    versioned_comments: bool = False
    # ``update`` returns the record read in full (comments included) after the write, good as
    # the read before a comment that follows it (Jira, which has no version on its writes)
    update_reads_record: bool = False
    # how the record versions order (``RemoteRecord.version``): "counter" (a number every change
    # raises: Azure DevOps' rev), "time" (the last change's time: Jira's ``updated``, Zendesk's
    # ``updated_at``), "" (no order known: every read counts). With an order, a read older than
    # the link's snapshot (another daemon's, or a webhook's, read recorded first) is no change.
    version_order: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutgoingComment:
    """A comment to add with a write (``Connector.write``)."""

    body: str
    public: bool
    notify: tuple[str, ...] = ()  # addresses the tracker should notify, as ``add_comment``


@dataclass(frozen=True)
class Written:
    """What one ``Connector.write`` left: the record as the write's reply shows it (comments
    not loaded) and the id of the comment it added, if any."""

    record: RemoteRecord
    comment_id: str | None = None


class TrackerConfig(BaseModel):
    """Settings common to every tracker section of the configuration file."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    base_url: str
    mapping: str = Field(description="mapping file: a path, or the name of a shipped mapping")
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    max_wait_seconds: float = Field(default=120.0, gt=0)
    # attachments (core/attachments.py): files above this size are linked, not copied; None:
    # the tracker's own limit (docs/<tracker>.md)
    attachment_max_bytes: int | None = Field(default=None, gt=0)
    # people (core/people.py): address -> this tracker's user, for people whose address is
    # hidden or differs here (a Jira accountId, an Azure DevOps unique name, a Zendesk address)
    people: dict[str, str] = Field(default_factory=dict)
    people_cache_seconds: float = Field(default=86400.0, ge=0)
    webhook: WebhookConfig | None = Field(default=None, description="accept this tracker's "
                                          "webhooks as hints (tiersync daemon --listen)")


class Connector(abc.ABC):
    """Reads and writes one tracker. Implementations live in ``connectors/<kind>.py``."""

    kind: ClassVar[str]
    config_model: ClassVar[type[TrackerConfig]] = TrackerConfig
    # Field paths the tracker accepts in a mapping file (checked by ``tiersync check``).
    field_path_pattern: ClassVar[re.Pattern[str]] = re.compile(r".+")

    def __init__(self, name: str, config: TrackerConfig):
        self.name = name
        self.config = config

    @abc.abstractmethod
    def fetch_changes(self, cursor: str | None) -> Iterator[Page]:
        """Pages of records changed since ``cursor`` (None: from the configured start)."""

    def load_details(self, records: list[RemoteRecord]) -> list[RemoteRecord]:
        """The same records with what ``fetch_changes`` leaves out to save requests (Zendesk's
        comments); the engine calls it only for the records it found relevant."""
        return records

    @abc.abstractmethod
    def get(self, remote_id: str) -> RemoteRecord:
        """One record by id; raises NotFound."""

    @abc.abstractmethod
    def create(self, fields: dict[str, Any], *, idempotency_key: str,
               origin: OriginRef | None = None) -> RemoteRecord:
        """Create a record carrying ``idempotency_key`` as a marker, linked back to ``origin``."""

    def fetch_records(self, remote_ids: list[str]) -> list[RemoteRecord]:
        """The records with these ids as they are now (a webhook's hint); missing ones are left
        out. Connectors with a bulk read override this."""
        records = []
        for remote_id in dict.fromkeys(remote_ids):
            try:
                records.append(self.get(remote_id))
            except NotFound:
                continue
        return records

    @abc.abstractmethod
    def find_by_idempotency_key(self, idempotency_key: str) -> RemoteRecord | None:
        """The record created with this key, or None when no such create happened."""

    def find_by_idempotency_keys(self, idempotency_keys: list[str]) -> dict[str, RemoteRecord]:
        """The records created with any of these keys, by key (keys without one are left out).
        Connectors whose tracker can look several up in one query override this."""
        found = {key: self.find_by_idempotency_key(key) for key in dict.fromkeys(idempotency_keys)}
        return {key: record for key, record in found.items() if record is not None}

    @abc.abstractmethod
    def update(self, remote_id: str, fields: dict[str, Any], *,
               expected_version: str | None) -> RemoteRecord:
        """Write ``fields``; raises Conflict when the record is no longer at ``expected_version``."""

    def write(self, remote_id: str, fields: dict[str, Any], comment: OutgoingComment | None, *,
              expected_version: str) -> Written:
        """Write ``fields`` and add ``comment`` in one update that the tracker refuses whole
        (Conflict) unless the record is still at ``expected_version``; nothing lands then.
        Only for trackers with ``Capabilities.versioned_comments``."""
        raise PermanentError(f"{self.kind} cannot carry a comment in a versioned update",
                             tracker=self.name)

    @abc.abstractmethod
    def add_comment(self, remote_id: str, body: str, *, public: bool,
                    notify: tuple[str, ...] = ()) -> str:
        """Add a comment (public) or internal note (not public); returns the comment id.

        ``notify``: addresses of people the tracker should notify of it, its own way (Zendesk
        followers, Jira watchers and mentions, Azure DevOps mentions); someone the tracker does
        not know is left out (and logged), the comment is still added."""

    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this tracker supports."""

    def check_online(self, field_paths: list[str], values: dict[str, list[Any]]) -> list[str]:
        """Verify credentials and that the named fields/values exist; returns problems."""
        return []

    def use_mapping(self, mapping: Any) -> None:
        """The connector's mapping, handed over by the engine (for tracker sections such as
        ``transition_fields``); unused by default."""

    def repair(self) -> int:
        """Re-add what tiersync owns on the tracker and was found missing while reading (back
        links); called once per cycle after the outbox, never in a dry run. Returns how many."""
        return 0

    def close(self) -> None:
        """Release sessions and files."""


class TrackerKind(Protocol):
    """What the configuration needs to know of a tracker kind to check its section: a
    ``Connector`` subclass has both, and so has the wiring's light description of one."""

    config_model: type[TrackerConfig]
    field_path_pattern: re.Pattern[str]
