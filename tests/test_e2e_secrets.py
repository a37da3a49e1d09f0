"""Every credential format planted in ticket text, end to end over the simulators: absent from
the logs (text and JSON, DEBUG), the audit export, the store file's bytes and the mirrors in
Jira and Azure DevOps; the Zendesk origin keeps its text; later cycles find only echoes."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from bench.chaos_process import tiersync_command
from harness.demo import CF, PARTNER, SR
from harness.sandbox import Sandbox

pytestmark = pytest.mark.e2e

SECRETS = {
    "aws key id": "AKIAZ7Q3XK2MRT4VWP9B",
    "aws secret": "q8Hd2kLmN3pRt5vXz7Bc9Df1Gh4Jk6Lm8Np0Qr2S",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJwYXJ0bmVyIiwiaWF0IjoxNTE2MjM5MDIyfQ."
           "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "github": "ghp_Zx8Kq2Lm4Np6Rt8Vw0Yz2Ab4Cd6Ef8Gh0Ij1",
    "gitlab": "glpat-7Hk2Lm9Qr4Tv6Xz8Bc1D",
    "slack": "xoxb-112233445566-778899001122-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op",
    "azure": "Kf8s2Lm4Np6Rt8Vw0Yz2Ab4Cd6Ef8Gh0Ij2Kl4Mn6Op8Qr0St2Uv4Wx6Yz8Ab0Cd2Ef4Gh6Ij8Kl0Mn2Op4Qr6St8Uv",
    "google": "AIzaSyB3x9Kq2Lm4Np6Rt8Vw0Yz2Ab4Cd6Ef8Gh",
    "private key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Vx3",
    "bearer": "d8F3kL9mQ2rT5vX8zB1cE4gH7jK0nP3s",
    "basic": "c3VwcG9ydDpTdTNyU2VjcmV0IQ==",
    "url": "Pr0xyP4ss!",
    "pin": "48213",
    "password": "Hunter2!root",
}
TEXT = f"""Our customer's SAS URL returns 403 since this morning (version 4.2.1, host web01.contoso.example).
Root/Admin Password: {SECRETS['password']} and the door PIN 48213.
AWS: {SECRETS['aws key id']} / aws_secret_access_key={SECRETS['aws secret']}
Session token {SECRETS['jwt']}
CI uses {SECRETS['github']} and {SECRETS['gitlab']}; alerts go through {SECRETS['slack']}.
DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey={SECRETS['azure']}==;EndpointSuffix=core.windows.net
Maps key {SECRETS['google']}
-----BEGIN PRIVATE KEY-----
{SECRETS['private key']}
-----END PRIVATE KEY-----
curl -H "Authorization: Bearer {SECRETS['bearer']}" -H "Authorization: Basic {SECRETS['basic']}"
proxy http://svc:{SECRETS['url']}@proxy.contoso.example:3128"""


TIER2_TOKEN = "ghp_Tier2Zx8Kq2Lm4Np6Rt8Vw0Yz2Ab4Cd6Ef8g"
SECRETS_ALL = {**SECRETS, "tier 2 token": TIER2_TOKEN}


def _run(box: Sandbox, log_format: str) -> str:
    config = yaml.safe_load(box.config_path.read_text())
    config.update(log_level="DEBUG", log_format=log_format)
    box.config_path.write_text(yaml.safe_dump(config))
    result = subprocess.run([*tiersync_command(), "run", "--once", "--config", str(box.config_path)],
                            env={**os.environ, **box.env}, capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    return result.stdout + result.stderr


def _leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS_ALL.items() if secret in text]


def _store_bytes(workdir: Path) -> str:
    data = b"".join(p.read_bytes() for p in workdir.glob("tiersync.db*"))
    return data.decode("latin-1")


def test_every_secret_format_stays_out_of_logs_audit_store_and_mirrors(tmp_path):
    with Sandbox(tmp_path) as box:
        zendesk = box.people.zendesk
        ticket = zendesk.create_ticket(
            subject=f"{SR} - SAS gateway, PIN 48213", description=TEXT, requester=PARTNER,
            priority="high", tags=["escalate_tier2"],
            custom_fields={CF["sr"]: SR, CF["severity"]: "sev_2", CF["plan"]: "plan_enterprise",
                           CF["engagement"]: "Technical", CF["offer_type"]: "SaaS Offer",
                           CF["offer_ids"]: "contoso-sas", CF["seller"]: "SELLER-4711",
                           CF["scope"]: "scope_cloud", CF["contact_name"]: "Ana Souza",
                           CF["contact_email"]: "ana.souza@contoso.example"})
        logs = _run(box, "text")
        zendesk.comment(ticket, f"Partner again: {TEXT}", public=True)
        logs += _run(box, "json")
        items = box.snapshot()["azure_devops"]["work_items"]
        item = next(w["id"] for w in items if SR in (w["title"] or ""))
        box.people.azure_devops.update(item, {}, history=f"Tier 2 note: use {TIER2_TOKEN} to log in")
        logs += _run(box, "json")
        logs += _run(box, "text")
        audit = subprocess.run([*tiersync_command(), "audit", "--json", "--config", str(box.config_path)],
                               env={**os.environ, **box.env}, capture_output=True, text=True, timeout=60)
        assert audit.returncode == 0 and audit.stdout.strip()
        snapshot = box.snapshot()
        mirrors = json.dumps({k: snapshot[k] for k in ("jira", "azure_devops")}).replace(TIER2_TOKEN, "")
        origin = json.dumps(snapshot["zendesk"])
        assert "DEBUG" in logs and '"level": "DEBUG"' in logs
        assert _leaks(logs) == []
        assert _leaks(audit.stdout) == []
        assert _leaks(_store_bytes(tmp_path)) == []
        assert SR in mirrors and "[REDACTED]" in mirrors, "the mirrors got the (masked) text"
        assert _leaks(mirrors) == []
        assert SECRETS["pin"] in origin and SECRETS["aws key id"] in origin, "the origin keeps its text"
        assert "Tier 2 note" in origin and TIER2_TOKEN not in origin, "copies into Zendesk are masked"
        assert TIER2_TOKEN in json.dumps(snapshot["azure_devops"]), "Azure DevOps keeps its own text"
        box.clear_requests()
        _run(box, "text")
        assert box.write_requests() == {"zendesk": 0, "jira": 0, "azure_devops": 0}, "no echo loop"
