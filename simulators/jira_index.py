"""The simulated Jira's search index (eventual consistency) and moving issues between projects.

Search index — Jira Cloud's JQL search is eventually consistent: "recently created or updated
issues might not be returned immediately" and ``reconcileIssues`` ("strong consistency issue ids
to be reconciled with search results, max 50 ids") reads the listed issues fresh (REST v3 "Search
for issues using JQL enhanced search", specs/jira/jira-cloud-platform-v3.json; Atlassian
changelog CHANGE-2046). Here a JQL query is matched and sorted against the issue as it was when
last indexed: a change becomes searchable ``lag`` seconds after it was made (the fixture's
``site.index_lag_seconds`` times the simulator's ``time_scale``). Until then a new issue is not
found at all and a changed one is found only by what it held before. The bodies returned are the
issue's current ones (the index selects, the database renders). ``GET /issue/{idOrKey}`` is always
current.

Moving — "Move work items between projects": the issue gets a key in the target project, keeps
its id, and the old key keeps working: "you can still access the work item using the old key"
(support.atlassian.com/jira-software-cloud/docs/move-an-issue). A move changes ``updated``.
Jira's REST move is an asynchronous bulk task; here it is a simulator control endpoint
(``POST /_sim/jira/move``) so tests and scenarios can trigger it over HTTP.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Iterable

from simulators.jira_state import FieldErrors, SimIssue

if TYPE_CHECKING:
    from simulators.jira_state import JiraStore


class SearchIndex:
    """What JQL sees: per issue, the copy indexed once its last change was ``lag`` old."""

    def __init__(self, lag_seconds: float):
        self.lag = timedelta(seconds=max(0.0, lag_seconds))
        self._copies: dict[int, SimIssue] = {}
        self._settled: dict[int, datetime] = {}  # issue id -> 'updated' made searchable at once

    def searchable(self, issues: Iterable[SimIssue], reconcile: set[str],
                   now: datetime | None = None) -> list[tuple[SimIssue, SimIssue]]:
        """(indexed copy to match on, live issue) for every issue the index holds."""
        now = now or datetime.now(timezone.utc)
        out = []
        for issue in issues:
            if str(issue.id) in reconcile or self._ripe(issue, now):
                self._copies[issue.id] = _copy(issue)
            copy = self._copies.get(issue.id)
            if copy is not None:
                out.append((copy, issue))
        return out

    def _ripe(self, issue: SimIssue, now: datetime) -> bool:
        return now - issue.updated >= self.lag or self._settled.get(issue.id) == issue.updated

    def settle(self, issues: Iterable[SimIssue]) -> None:
        """Make every change so far searchable now (as if the lag had passed)."""
        for issue in issues:
            self._settled[issue.id] = issue.updated

    def set_lag(self, lag_seconds: float) -> None:
        self.lag = timedelta(seconds=max(0.0, lag_seconds))


def _copy(issue: SimIssue) -> SimIssue:
    return dataclasses.replace(issue, values=dict(issue.values), comments=list(issue.comments),
                               properties=dict(issue.properties),
                               remote_links=list(issue.remote_links))


def move_issue(store: "JiraStore", ref: str, project_key: str, issuetype: str | None = None) -> SimIssue:
    """Move an issue to another project: new key, same id; the old key still resolves."""
    issue = store.find(ref)
    if issue is None:
        raise KeyError(f"no issue {ref}")
    target = store.site.project(project_key)
    if target is None:
        raise FieldErrors({"project": f"No project could be found with key '{project_key}'."})
    names = [t["name"] for t in target.issue_types]
    chosen = issuetype or (issue.issuetype if issue.issuetype in names else names[0])
    if chosen not in names:
        raise FieldErrors({"issuetype": f"Issue type {chosen!r} does not exist in {target.key}"})
    if target.key == issue.project.key:
        return issue
    store.rekey(issue, target, chosen)
    return issue
