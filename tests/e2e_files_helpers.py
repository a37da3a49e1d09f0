"""Shared steps of the attachment and people end-to-end tests (over the simulators)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from harness.demo import CF, PARTNER, SR
from harness.sandbox import Sandbox

FIELDS = {CF["sr"]: SR, CF["severity"]: "sev_2", CF["plan"]: "plan_enterprise",
          CF["engagement"]: "Technical", CF["offer_type"]: "Azure Application Offer",
          CF["offer_ids"]: "contoso-sas-gateway", CF["seller"]: "SELLER-4711",
          CF["scope"]: "scope_cloud", CF["contact_name"]: "Ana Souza",
          CF["contact_email"]: "ana.souza@contoso.example"}
OWNER = "alice.agent@tier1.example.com"


def cycle(box: Sandbox) -> Any:
    report = box.cycle()
    assert report.connector_errors == [] and report.quarantined == 0 and report.actions_dead == 0, \
        report.as_dict()
    return report


def open_case(box: Sandbox, uploads: list[str] | None = None) -> int:
    """The partner's ticket, assigned to the tier 1 agent, escalated; mirrors created."""
    ticket_id = box.people.zendesk.create_ticket(
        subject=f"{SR} - SAS web address doesn't work", description="See the screenshot.",
        requester=PARTNER, priority="high", tags=["escalate_tier2", "escalation_recommended"],
        custom_fields=FIELDS, assignee_email=OWNER, uploads=uploads)
    cycle(box)
    cycle(box)  # the mirrors' first reads
    return ticket_id


def item(box: Sandbox) -> Any:
    return next(iter(box.sims["azure_devops"].store.items.values()))


def issue(box: Sandbox) -> Any:
    return next(i for i in box.sims["jira"].store.issues.values() if SR in (i.values.get("summary") or ""))


def attached_files(box: Sandbox) -> list[dict[str, Any]]:
    return [r for r in item(box).current.relations if r["rel"] == "AttachedFile"]


def ado_blob(box: Sandbox, relation: dict[str, Any]) -> Any:
    blob_id = relation["url"].split("/attachments/")[1].split("?")[0]
    return box.sims["azure_devops"].files.blobs.items[blob_id]


def jira_blob(box: Sandbox, attachment: dict[str, Any]) -> Any:
    return box.sims["jira"].files.blobs.items[attachment["blob"]]


def configure(box: Sandbox, tracker: str, **settings: Any) -> None:
    """Change a tracker section of the sandbox's configuration (a restart reads it)."""
    config = yaml.safe_load(box.config_path.read_text())
    config["trackers"][tracker].update(settings)
    box.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiersync_script() -> str:
    import sys
    return str(Path(sys.executable).with_name("tiersync"))


def cli_env(box: Sandbox) -> dict[str, str]:
    return {**os.environ, **box.env}
