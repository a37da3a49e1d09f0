"""The ``kind: zendesk`` tracker section, light: checked without importing zenpy."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from core.connector import TrackerConfig
from core.errors import ConfigError


def split_base_url(base_url: str) -> tuple[str, str, str]:
    """(protocol, subdomain, domain) such that zenpy's URL template gives back ``base_url``."""
    parts = urlsplit(base_url.rstrip("/"))
    host = parts.hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    if parts.scheme not in ("http", "https") or "." not in host or parts.path not in ("", "/"):
        raise ConfigError(f"base_url {base_url!r}: expected https://<subdomain>.zendesk.com or "
                          f"http://<host with a dot, e.g. 127.0.0.1>:<port>")
    subdomain, domain = host.split(".", 1)
    if parts.port:
        domain = f"{domain}:{parts.port}"
    return parts.scheme, subdomain, domain


class ZendeskConfig(TrackerConfig):
    kind: Literal["zendesk"] = "zendesk"
    base_url: str = Field(description="https://<subdomain>.zendesk.com, or a simulator's URL")
    email_env: str = Field(default="ZENDESK_EMAIL", description="variable holding the agent's email")
    token_env: str = Field(default="ZENDESK_TOKEN", description="variable holding the API token")
    start_at: datetime | Literal["epoch"] | None = Field(
        default=None, description="first sync starts here; default 30 days ago; 'epoch': all")
    include_comments: bool = Field(default=True, description="read each changed ticket's comments")
    description_public: bool = Field(
        default=False, description="whether the first comment of a ticket tiersync creates is public")
    job_poll_seconds: float = Field(default=1.0, gt=0, description="update_many job polling interval")
    job_timeout_seconds: float = Field(default=120.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _usable_base_url(cls, value: str) -> str:
        try:
            split_base_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value
