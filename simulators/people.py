"""The people of the scenario, working in their own tracker through its public REST API.

These calls stand for what an agent does in the tracker's web UI. They go straight to the
(simulated) tracker with ``requests``, never through tiersync's connectors, so the end-to-end
tests observe tiersync from the outside.
"""
from __future__ import annotations

from typing import Any

import requests


class _Client:
    def __init__(self, base_url: str, auth: tuple[str, str]):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = auth

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}{path}", timeout=10, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None


class ZendeskAgent(_Client):
    """A tier 1 agent (or a partner writing in) in Zendesk."""

    def create_ticket(self, *, subject: str, description: str, requester: dict[str, str],
                      priority: str = "normal", tags: list[str] | None = None,
                      custom_fields: dict[int, Any] | None = None, uploads: list[str] | None = None,
                      **extra: Any) -> int:
        ticket = {"subject": subject, "comment": {"body": description, "public": True,
                                                  **({"uploads": uploads} if uploads else {})},
                  "requester": requester, "priority": priority, "tags": tags or [],
                  "custom_fields": [{"id": k, "value": v} for k, v in (custom_fields or {}).items()]}
        ticket.update(extra)
        return self.call("POST", "/api/v2/tickets.json", json={"ticket": ticket})["ticket"]["id"]

    def update(self, ticket_id: int, **fields: Any) -> None:
        self.call("PUT", f"/api/v2/tickets/{ticket_id}.json", json={"ticket": fields})

    def comment(self, ticket_id: int, body: str, public: bool = True, **fields: Any) -> None:
        self.update(ticket_id, comment={"body": body, "public": public}, **fields)

    def upload(self, name: str, content: bytes | Any, content_type: str) -> str:
        """Upload a file as the agent UI does (Upload Files); returns the token."""
        return self.call("POST", "/api/v2/uploads.json", params={"filename": name}, data=content,
                         headers={"Content-Type": content_type})["upload"]["token"]

    def comment_with_files(self, ticket_id: int, body: str, tokens: list[str],
                           public: bool = True) -> None:
        self.update(ticket_id, comment={"body": body, "public": public, "uploads": tokens})


class AzureDevOpsEngineer(_Client):
    """A tier 2 engineer working engagement items on the Azure DevOps board."""

    def __init__(self, base_url: str, auth: tuple[str, str], project: str):
        super().__init__(base_url, auth)
        self.project = project

    def update(self, item_id: int | str, fields: dict[str, Any], history: str | None = None) -> dict:
        patch = [{"op": "add", "path": f"/fields/{name}", "value": value}
                 for name, value in fields.items()]
        if history:
            patch.append({"op": "add", "path": "/fields/System.History", "value": history})
        return self.call("PATCH", f"/{self.project}/_apis/wit/workitems/{item_id}?api-version=7.1",
                         json=patch, headers={"Content-Type": "application/json-patch+json"})

    def set_state(self, item_id: int | str, state: str, history: str | None = None) -> dict:
        return self.update(item_id, {"System.State": state}, history)


class JiraEngineer(_Client):
    """An engineer (tier 3/4) in Jira."""

    def transition(self, key: str, status: str, resolution: str = "Done") -> None:
        """One transition to ``status``, filling a required Resolution as a person would."""
        options = self.call("GET", f"/rest/api/2/issue/{key}/transitions",
                            params={"expand": "transitions.fields"})["transitions"]
        match = next((t for t in options if t["to"]["name"] == status), None)
        if match is None:
            raise RuntimeError(f"{key}: no transition to {status!r}")
        body: dict[str, Any] = {"transition": {"id": match["id"]}}
        if "resolution" in (match.get("fields") or {}):
            body["fields"] = {"resolution": {"name": resolution}}
        self.call("POST", f"/rest/api/2/issue/{key}/transitions", json=body)

    def comment(self, key: str, body: str) -> None:
        self.call("POST", f"/rest/api/2/issue/{key}/comment", json={"body": body})


class People:
    """One person per tracker, each signed in as themselves (the simulators accept any token for
    a known user unless they were started with fixed credentials, in which case the sandbox's
    credentials are used)."""

    ZENDESK_AGENT = "alice.agent@tier1.example.com"
    JIRA_ENGINEER = "dana.okafor@engineering.example.com"
    ADO_ENGINEER = "tier2.agent@fabrikam.example"

    def __init__(self, sections: dict[str, dict[str, Any]], env: dict[str, str]):
        zd = sections["zendesk"]
        self.zendesk = ZendeskAgent(zd["base_url"], (f"{self.ZENDESK_AGENT}/token", "personal-token"))
        ado = sections["azure_devops"]
        self.azure_devops = AzureDevOpsEngineer(ado["base_url"], (self.ADO_ENGINEER, env[ado.get("pat_env", "AZURE_DEVOPS_PAT")]),
                                                ado["project"])
        jira = sections["jira"]
        self.jira = JiraEngineer(jira["base_url"], (self.JIRA_ENGINEER, "personal-token"))
