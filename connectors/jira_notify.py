"""Notifying people in Jira: watchers and mentions.

A comment that should notify people gets one mention per person (``[~accountid:<id>]``, the wiki
markup of the v2 API: developer.atlassian.com, "Deprecation notice - user privacy", user
references in text use accountIds) and each person is added as a watcher
(``POST /rest/api/2/issue/{key}/watchers`` with the accountId as a JSON string, "Add watcher"
in the Jira Cloud REST API), so they also hear of later changes. Adding a watcher twice is
harmless, so the call is retried like a read. A person Jira does not know is left out and logged.
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from core.errors import PermanentError

if TYPE_CHECKING:
    from connectors.jira import JiraConnector

log = logging.getLogger("tiersync.connectors.jira")


def accounts(connector: "JiraConnector", people: tuple[str, ...]) -> list[str]:
    """accountIds of the people Jira knows (addresses looked up, accountIds as given)."""
    found: list[str] = []
    for who in people:
        try:
            account = connector.writes.account_id(who)
        except PermanentError:
            log.warning("%s: %s is not a Jira user; not notified", connector.name, who)
            continue
        if account not in found:
            found.append(account)
    return found


def with_mentions(body: str, account_ids: list[str]) -> str:
    if not account_ids:
        return body
    return body + "\n\nNotified: " + " ".join(f"[~accountid:{a}]" for a in account_ids)


def add_watchers(connector: "JiraConnector", key: str, account_ids: list[str]) -> None:
    api = connector.api
    for account in account_ids:
        def send(account: str = account) -> None:
            client = api.client
            response = client._session.post(client._get_url(f"issue/{key}/watchers"),
                                            data=json.dumps(account))
            response.raise_for_status()
        api.retrying(f"add watcher to {key}", send)
