"""A sandbox whose trackers send signed webhooks to a tiersync daemon listening on localhost.

Used by bench/latency.py and the webhook end-to-end tests: adds a ``webhook`` section to every
tracker of the sandbox's configuration (secrets in the environment, as an admin would set
them), and points each simulator's webhooks at ``/webhooks/<tracker>`` of the daemon.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import requests
import yaml

from bench.chaos_process import tiersync_command
from harness.sandbox import Sandbox

SECRETS = {"ZENDESK_WEBHOOK_SECRET": "zd-signing-secret-7f3a",
           "JIRA_WEBHOOK_SECRET": "jira-admin-webhook-secret-19c2",
           "ADO_WEBHOOK_USER": "tiersync-hook", "ADO_WEBHOOK_PASSWORD": "ado-hook-pass-55e1",
           "ADO_WEBHOOK_HEADER": "ado-header-secret-0b9d"}
SECTIONS = {"zendesk": {"secret_env": "ZENDESK_WEBHOOK_SECRET"},
            "jira": {"secret_env": "JIRA_WEBHOOK_SECRET"},
            "azure_devops": {"username_env": "ADO_WEBHOOK_USER", "password_env": "ADO_WEBHOOK_PASSWORD",
                             "secret_env": "ADO_WEBHOOK_HEADER", "header": "X-Tiersync-Webhook-Secret"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_webhook_sections(box: Sandbox, trackers: tuple[str, ...] = ("zendesk", "jira", "azure_devops"),
                         settings: dict[str, Any] | None = None) -> None:
    config = yaml.safe_load(box.config_path.read_text())
    for name in trackers:
        config["trackers"][name]["webhook"] = {**SECTIONS[name], **(settings or {})}
    if settings is not None and "daemon" in settings:
        config["daemon"] = settings.pop("daemon")
    box.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    box.env.update(SECRETS)
    os.environ.update(SECRETS)


def sim_webhook_target(name: str, port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/webhooks/{name}"
    if name == "azure_devops":
        return {"url": url, "username": SECRETS["ADO_WEBHOOK_USER"],
                "password": SECRETS["ADO_WEBHOOK_PASSWORD"],
                "headers": {"X-Tiersync-Webhook-Secret": SECRETS["ADO_WEBHOOK_HEADER"]}}
    secret = SECRETS["ZENDESK_WEBHOOK_SECRET" if name == "zendesk" else "JIRA_WEBHOOK_SECRET"]
    return {"url": url, "secret": secret}


def point_webhooks(box: Sandbox, port: int, faults: dict[str, Any] | None = None) -> None:
    """Configure every simulator's webhooks over its admin HTTP API, as a test driver would."""
    for name, sim in box.sims.items():
        body = {**sim_webhook_target(name, port), **(faults or {})}
        reply = requests.post(f"{sim.base_url}/_sim/webhooks", data=json.dumps(body), timeout=10)
        reply.raise_for_status()


def start_daemon(box: Sandbox, port: int, log: Path, interval: float) -> subprocess.Popen:
    return subprocess.Popen([*tiersync_command(), "daemon", "--interval", str(interval),
                             "--listen", f"127.0.0.1:{port}", "--config", str(box.config_path)],
                            env={**os.environ, **box.env}, stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"))
