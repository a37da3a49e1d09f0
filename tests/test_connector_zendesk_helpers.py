"""Shared pieces of the Zendesk connector tests that run ``responses`` in front of zenpy (no tests
here: fixtures and helpers imported by test_connector_zendesk.py and ..._writes.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors import retry
from connectors.zendesk import ZendeskConfig, ZendeskConnector

FIXTURES = Path(__file__).parent / "fixtures" / "zendesk"
BASE = "https://acme.zendesk.com"
API = f"{BASE}/api/v2"


def load(name: str) -> Any:
    """A fresh copy of a recorded Zendesk payload (tests may change it)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def body(call: Any) -> Any:
    return json.loads(call.request.body)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """Seconds tiersync's retry policy asked to sleep (nothing really sleeps)."""
    waited: list[float] = []
    monkeypatch.setattr(retry, "sleep", waited.append)
    return waited


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def make(monkeypatch):
    monkeypatch.setenv("ZENDESK_EMAIL", "tiersync@tier1.example.com")
    monkeypatch.setenv("ZENDESK_TOKEN", "tok-123456")

    def build(**overrides: Any) -> ZendeskConnector:
        settings = {"base_url": BASE, "mapping": "zendesk", "start_at": "2026-01-01T00:00:00Z",
                    "include_comments": False, "max_attempts": 3, **overrides}
        return ZendeskConnector("zendesk", ZendeskConfig(**settings))

    return build
