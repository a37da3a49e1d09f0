"""The settings of a tracker's webhooks (verified by connectors/webhooks.py)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebhookConfig(BaseModel):
    """``trackers.<name>.webhook``: where the webhook secrets are; without it, no webhook."""

    model_config = ConfigDict(extra="forbid")
    secret_env: str | None = Field(default=None, description="variable holding the signing "
                                   "secret (Zendesk, Jira) or the shared header secret (Azure DevOps)")
    header: str = Field(default="X-Tiersync-Webhook-Secret",
                        description="Azure DevOps: the HTTP header carrying the shared secret")
    username_env: str | None = Field(default=None, description="Azure DevOps: basic auth user")
    password_env: str | None = Field(default=None, description="Azure DevOps: basic auth password")
    max_age_seconds: float = Field(default=300.0, gt=0, description="older requests are replays")
    max_body_bytes: int = Field(default=1_000_000, gt=0, le=50_000_000)
