"""The common escalation model: one support escalation as every tracker sees it.

Every field comes from the support-process documents in ``shared/seeds`` (see DESIGN.md,
"The common escalation model"). The model knows nothing of any tracker's API.
"""
from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(timezone.utc)


AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]
"""A datetime that must carry a time zone; stored normalised to UTC."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_escalation_id() -> str:
    return "esc-" + uuid.uuid4().hex[:16]


class State(str, enum.Enum):
    """Work item states of seed 000 plus ``rejected`` (seed 001 validation failure)."""

    NEW = "new"
    ACTIVELY_WORKING = "actively_working"
    WAITING_ON_CUSTOMER = "waiting_on_customer"  # "waiting on publisher" in seed 000
    WAITING_ON_INTERNAL = "waiting_on_internal"
    SOLUTION_PROPOSED = "solution_proposed"
    CLOSED = "closed"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        return self not in (State.CLOSED, State.REJECTED)


class Severity(int, enum.Enum):
    """Severity 1-4; 1 is an outage (seed 002)."""

    SEV1 = 1
    SEV2 = 2
    SEV3 = 3
    SEV4 = 4


class CustomerPriority(str, enum.Enum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class SupportPlan(str, enum.Enum):
    """Support options of seed 003; premium-ness is a policy setting per plan."""

    DEVELOPER = "developer"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class SupportTier(str, enum.Enum):
    """Seed 004: L1 front line, L2 first escalation, L3 owner, L4 third parties/engineering."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"


class Scope(str, enum.Enum):
    CLOUD = "cloud"
    ON_PREMISE = "on_premise"


class LinkRole(str, enum.Enum):
    ORIGIN = "origin"
    MIRROR = "mirror"


class SlaMetricName(str, enum.Enum):
    ACKNOWLEDGEMENT = "acknowledgement"
    FIRST_SOLUTION = "first_solution"
    CLOSE = "close"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


class Link(StrictModel):
    """One tracker record that belongs to an escalation."""

    tracker: str = Field(description="connector name from the configuration, e.g. 'zendesk'")
    remote_id: str
    key: str | None = None
    url: str | None = None
    role: LinkRole = LinkRole.MIRROR


class Comment(StrictModel):
    """A note in the escalation's discussion, with where it came from."""

    id: str = Field(default_factory=lambda: "c-" + uuid.uuid4().hex[:12])
    body: str
    public: bool = False
    author: str | None = None
    created_at: AwareDatetime
    source_tracker: str | None = None
    source_id: str | None = None
    # tracker name -> remote comment id, once tiersync has copied the comment there
    copied_to: dict[str, str] = Field(default_factory=dict)


class Attachment(StrictModel):
    """A file of the case (seed 000's Attachments field), as it came from its tracker."""

    name: str
    url: str | None = None
    source_tracker: str | None = None
    source_id: str | None = None  # the tracker's attachment id
    source_record: str | None = None  # the record it is on
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None  # known once tiersync has read the content
    inline: bool = False


class SlaMetric(StrictModel):
    due_at: AwareDatetime | None = None
    met_at: AwareDatetime | None = None
    on_time: bool | None = None
    delayed_reason: str | None = None
    warned_at: AwareDatetime | None = None
    breached_at: AwareDatetime | None = None


class SlaClock(StrictModel):
    """Business-time clock: starts at 'actively working', pauses while waiting on the customer."""

    started_at: AwareDatetime | None = None
    paused_at: AwareDatetime | None = None
    paused_seconds: float = 0.0  # business seconds spent paused so far
    policy: str | None = None  # name of the SLA policy that set the targets


class EscalationAnswer(StrictModel):
    """One management escalation request and the answer it got (seed 002), for the audit."""

    at: AwareDatetime
    requested: int  # the level asked for
    from_level: int
    to_level: int
    outcome: str  # accepted | refused | top
    rule: str
    reason: str


class Escalation(StrictModel):
    """One support escalation across trackers."""

    # identity
    id: str = Field(default_factory=new_escalation_id)
    version: int = Field(default=1, ge=1)
    links: list[Link] = Field(default_factory=list)
    created_at: AwareDatetime = Field(default_factory=utcnow)
    updated_at: AwareDatetime = Field(default_factory=utcnow)
    updated_by: str | None = None  # tracker (or 'policy') that produced this version

    # case
    sr_number: str | None = None
    case_created_at: AwareDatetime | None = None  # when the origin record was created
    title: str | None = None
    description: str | None = None
    comments: list[Comment] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)

    # people
    requester_alias: str | None = None
    requester_email: str | None = None
    original_owner: str | None = None
    assignee: str | None = None
    partner_name: str | None = None
    seller_id: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    csm_email: str | None = None  # the account's Customer Success Manager (seed 002)

    # classification
    source: str | None = None
    engagement_type: str | None = None
    offer_type: str | None = None
    offer_ids: list[str] = Field(default_factory=list)
    offer_names: list[str] = Field(default_factory=list)
    tenant_domain: str | None = None  # the onmicrosoft domain name (seed 001)
    product: str | None = None
    scope: Scope | None = None
    security_incident: bool = False
    escalation_recommended: bool = False
    top_partner: bool = False
    addons: list[str] = Field(default_factory=list)

    # urgency
    severity: Severity | None = None
    customer_priority: CustomerPriority | None = None
    support_plan: SupportPlan | None = None

    # routing
    queue: str | None = None
    tier: SupportTier = SupportTier.L1
    escalation_level: int = Field(default=0, ge=0, le=4)
    escalation_requested: int = Field(default=0, ge=0, le=4)
    routing_rule: str | None = None
    assignee_group: str | None = None
    routed_at: AwareDatetime | None = None  # first routed by the policy: starts the ack clock
    queue_rank: int | None = None  # lower is worked first (priority x plan x age)
    escalation_history: list[EscalationAnswer] = Field(default_factory=list)
    escalation_decision: str | None = None  # an Escalation Manager's decision (tracker field)

    # Escalation Manager review of the current level (seed 002: within 4 business hours)
    review_level: int = Field(default=0, ge=0, le=4)
    review_started_at: AwareDatetime | None = None
    review_due_at: AwareDatetime | None = None
    review_met_at: AwareDatetime | None = None
    review_met_by: str | None = None
    review_warned_at: AwareDatetime | None = None
    review_breached_at: AwareDatetime | None = None

    # state
    state: State = State.NEW
    rejection_reason: str | None = None
    close_reason: str | None = None
    last_tier2_update_at: AwareDatetime | None = None
    update_reminded_at: AwareDatetime | None = None  # last daily-update reminder (policy)
    solution_proposed_by: str | None = None  # assignee who proposed the solution (seed 000)
    not_converted_reason: str | None = None  # seed 003: an unregistered sender, left alone
    priority_abuse: str | None = None  # the abuse rule that flagged the customer priority

    # SLA
    sla_clock: SlaClock = Field(default_factory=SlaClock)
    sla: dict[SlaMetricName, SlaMetric] = Field(default_factory=dict)

    @field_validator("offer_ids", "offer_names", "addons", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def link_for(self, tracker: str) -> Link | None:
        return next((link for link in self.links if link.tracker == tracker), None)

    def origin(self) -> Link | None:
        return next((link for link in self.links if link.role is LinkRole.ORIGIN), None)

    def bumped(self, by: str, now: datetime, **changes: Any) -> "Escalation":
        """A copy with ``changes`` applied and the version increased by one."""
        data = self.model_dump()
        data.update(changes)
        data["version"] = self.version + 1
        data["updated_at"] = now
        data["updated_by"] = by
        return Escalation.model_validate(data)


# Fields of the model that mappings may read and write (scalar or list values).
MAPPABLE_FIELDS: frozenset[str] = frozenset(
    name
    for name in Escalation.model_fields
    if name
    not in {"id", "version", "links", "created_at", "updated_at", "updated_by", "comments",
            "attachments", "sla_clock", "sla", "escalation_history"}
) | frozenset(
    f"sla.{metric.value}.{part}"
    for metric in SlaMetricName
    for part in ("due_at", "met_at", "on_time", "delayed_reason", "warned_at", "breached_at")
)
