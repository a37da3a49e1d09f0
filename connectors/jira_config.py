"""The ``kind: jira`` tracker section, light: checked without importing the jira library."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from core.connector import TrackerConfig

# Field paths a Jira mapping may name (checked by ``tiersync check``)
FIELD_PATH = re.compile(
    r"^(summary|description|status|status\.category|resolution|priority|labels|components|"
    r"assignee|project|issuetype|created|customfield_\d+)$")


class JiraConfig(TrackerConfig):
    kind: Literal["jira"] = "jira"
    email_env: str = Field(default="JIRA_EMAIL", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    token_env: str = Field(default="JIRA_API_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    project: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,254}$", description="project key new issues go to")
    issue_type: str = "Escalation"
    service_management: bool = Field(default=False, description="the project is a Jira Service "
                                     "Management project: comments can be public or internal")
    property_key: str = Field(default="tiersync", pattern=r"^[A-Za-z0-9_.-]{1,200}$")
    idempotency_lookup: Literal["property", "label"] = Field(
        default="label", description="how find_by_idempotency_key searches: JQL on a marker label "
        "(works with an API token alone) or on the issue property (needs an app that indexes it)")
    start_at: datetime | Literal["epoch"] | None = Field(
        default=None, description="first sync starts here; default 30 days ago; 'epoch' = all")
    search_lag_seconds: float = Field(
        default=15.0, ge=0, le=600, description="how long a new or changed issue may take to be "
        "found by JQL (Jira Cloud search is eventually consistent); after a lost create reply the "
        "idempotency lookup waits this long before 'not found' counts")
    page_size: int = Field(default=100, ge=1, le=100)
    overlap_minutes: int = Field(default=2, ge=0, le=120)
    time_zone: str | None = Field(default=None, description="zone JQL dates are read in; "
                                  "default: the API user's profile zone (GET /myself)")

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: datetime | str | None) -> datetime | str | None:
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("start_at needs a time zone, e.g. 2026-01-05T00:00:00Z")
        return value
