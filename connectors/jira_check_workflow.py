"""``tiersync check --online`` for Jira's workflow, transition screens and project type.

Jira lists transitions only for an existing issue and only from its current status (the workflow
itself needs the Administer Jira permission, which a sync account rarely has). So the check
samples one issue of the project and issue type per status (JQL ``status = "S"``), reads its
transitions with ``expand=transitions.fields`` and learns the workflow from them:
- a required field on a transition screen that the mapping's ``transition_fields`` does not give
  (for the transition's target, or, for a status the mapping never asks for, for a mapped one);
- a ``transition_fields`` value that the screen does not allow (e.g. an unknown resolution);
- a mapped status no learned path reaches from the project's "new" statuses, reported only when
  every status could be sampled (otherwise an unsampled status might hold the missing edge);
- the project type: a Jira Service Management project configured as ``service_management:
  false`` (or the reverse).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.jira_site import SERVICE_DESK
from connectors.jira_workflow import WorkflowGraph

if TYPE_CHECKING:
    from connectors.jira import JiraConnector


def project_type_problems(connector: "JiraConnector") -> list[str]:
    cfg = connector.config
    kind = connector.site.project_type(cfg.project)
    if kind == SERVICE_DESK and not cfg.service_management:
        return [f"trackers.{connector.name}.service_management: false, but project {cfg.project} is "
                f"a Jira Service Management project (projectTypeKey {kind}); tiersync keeps "
                f"internal notes internal (sd.public.comment) and reads comment visibility from "
                f"Jira, but set service_management: true so the configuration says what happens"]
    if kind != SERVICE_DESK and cfg.service_management:
        return [f"trackers.{connector.name}.service_management: true, but project {cfg.project} is "
                f"a {kind} project: it has no customers, comments are always internal and public "
                f"replies are refused"]
    return []


def workflow_problems(connector: "JiraConnector", issue_type: dict[str, Any],
                      statuses: list[str], mapped: list[str]) -> list[str]:
    """Problems of the mapped statuses and transition fields against the sampled workflow."""
    graph, screens, sampled = WorkflowGraph(), [], set()
    for status in statuses:
        sample = _sample(connector, issue_type, status)
        if sample is None:
            continue
        sampled.add(status)
        transitions = connector.walker.transitions(sample["id"], sample["key"])
        graph.learn(("check", ""), _status_id(connector, status), transitions)
        screens += [(status, t) for t in transitions]
    problems = _screen_problems(connector, screens, mapped)
    if sampled == set(statuses):
        problems += _unreachable(connector, graph, statuses, mapped)
    return problems


def _sample(connector: "JiraConnector", issue_type: dict[str, Any], status: str) -> dict[str, Any] | None:
    from connectors.jira import jql_string

    jql = (f"project = {jql_string(connector.config.project)} AND status = {jql_string(status)} "
           f"ORDER BY updated DESC")
    found = connector.api.retrying("sample an issue", lambda: connector.api.client.enhanced_search_issues(
        jql, maxResults=20, fields="issuetype,status", json_result=True))
    return next((i for i in found.get("issues") or []
                 if str(((i.get("fields") or {}).get("issuetype") or {}).get("id")) == str(issue_type["id"])), None)


def _status_id(connector: "JiraConnector", name: str) -> str:
    return connector.status_id(name) or name


def _screen_problems(connector: "JiraConnector", screens: list[tuple[str, dict[str, Any]]],
                     mapped: list[str]) -> list[str]:
    problems, lowered = [], {m.lower() for m in mapped}
    for source, transition in screens:
        to = str((transition.get("to") or {}).get("name", ""))
        given = connector.transition_fields_for(to)
        if not given and to.lower() not in lowered:  # on the way only: a mapped status's fields
            given = next((connector.transition_fields_for(m) for m in mapped
                          if connector.transition_fields_for(m)), {})
        for fid, meta in (transition.get("fields") or {}).items():
            where = f"transition_fields.{to}.{fid}"
            if fid in given:
                problems += _allowed(where, meta, given[fid])
            elif meta.get("required") and not meta.get("hasDefaultValue"):
                problems.append(f"{where}: the transition {transition.get('name')!r} ({source} -> {to}) "
                                f"requires {meta.get('name', fid)!r} on its screen; the mapping gives "
                                f"none, so moving an issue to {to!r} would fail")
    return sorted(set(problems))


def _allowed(where: str, meta: dict[str, Any], value: Any) -> list[str]:
    allowed = meta.get("allowedValues")
    if allowed is None:
        return []
    names = [str(a.get("name") or a.get("value") or a.get("id")) for a in allowed]
    if str(value).lower() in {n.lower() for n in names} | {str(a.get("id")) for a in allowed}:
        return []
    return [f"{where}: {value!r} is not allowed on the transition screen (allowed: {', '.join(names)})"]


def _unreachable(connector: "JiraConnector", graph: WorkflowGraph, statuses: list[str],
                 mapped: list[str]) -> list[str]:
    starts = [s for s in statuses if connector.status_category(s) == "new"] or statuses[:1]
    problems = []
    for wanted in sorted({m for m in mapped if m.lower() in {s.lower() for s in statuses}}):
        goal = _status_id(connector, wanted)
        if not any(start.lower() == wanted.lower() or graph.path(("check", ""), _status_id(connector, start), goal)
                   for start in starts):
            problems.append(f"status: {wanted!r} cannot be reached from {', '.join(starts)} in the "
                            f"workflow of {connector.config.project}/{connector.config.issue_type} "
                            f"(learned from the transitions of one issue per status)")
    return problems
