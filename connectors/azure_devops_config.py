"""The ``kind: azure_devops`` tracker section, light: checked without importing the SDK."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, field_validator

from core.connector import TrackerConfig

# Field reference names (System.Title, Custom.SRNumber, Microsoft.VSTS.Common.Severity, ...)
FIELD_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


class AzureDevOpsConfig(TrackerConfig):
    kind: Literal["azure_devops"] = "azure_devops"
    base_url: str = Field(description="organization URL, e.g. https://dev.azure.com/fabrikam")
    project: str = Field(min_length=1)
    work_item_type: str = "Engagement Item"
    fetch_types: list[str] | None = Field(
        default=None, description="work item types to pull; default [work_item_type]; [] = all")
    pat_env: str = "AZURE_DEVOPS_PAT"
    start_at: datetime | Literal["epoch"] | None = Field(
        default=None, description="first sync starts here; default 30 days ago")
    page_size: int = Field(default=200, ge=1, le=200)  # workitemsbatch takes 200 ids
    marker_field: str | None = Field(
        default=None, description="field holding the idempotency key; default: a tiersync:<key> tag")
    read_comments: bool = True
    html_fields: list[str] = Field(default_factory=lambda: ["System.Description"])
    wiql_max_results: int = Field(default=20000, ge=2, le=20000)
    identity_url: str | None = Field(
        default=None, description="identity service for @mentions; default vssps.dev.azure.com/<org>")
    attachment_chunk_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="files larger than this are uploaded in "
        "chunks of this size (uploadType=Chunked)")

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value
