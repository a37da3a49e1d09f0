"""``check --online`` for Jira's workflow against the simulator: unreachable mapped statuses and
transition screens whose required fields the mapping does not give, sampled from real issues."""
from __future__ import annotations

import copy

from connectors.jira import JiraConfig, JiraConnector
from core.mapping import load_mapping, resolve_mapping_path
from simulators.jira import JiraSimulator, connector_config, load_default_fixture

STATUSES = ["To Do", "In Progress", "Waiting for customer", "Waiting for support", "Resolved", "Done"]


def site(without_transition: str | None = None) -> dict:
    fixture = copy.deepcopy(load_default_fixture())
    if without_transition:
        fixture["workflow"]["transitions"] = [t for t in fixture["workflow"]["transitions"]
                                              if t["id"] != without_transition]
    fixture["issues"] = [{"project": "ENG", "issuetype": "Escalation", "status": s,
                          "fields": {"summary": f"sample in {s}"}} for s in STATUSES]
    return fixture


def check(fixture: dict, monkeypatch, transition_fields: dict | None = None) -> list[str]:
    # lenient: no index lag, the samples are searched right after seeding
    with JiraSimulator(fixture=fixture, index_lag_seconds=0) as sim:
        wiring = connector_config(sim)
        for name, value in wiring["env"].items():
            monkeypatch.setenv(name, value)
        jira = JiraConnector("jira", JiraConfig(**wiring["config"]))
        mapping = load_mapping(resolve_mapping_path("jira"))
        if transition_fields is not None:
            mapping = mapping.model_copy(update={"transition_fields": transition_fields})
        jira.use_mapping(mapping)
        return jira.check_online(["summary", "status"], {"status": STATUSES})


def test_the_shipped_mapping_passes_on_the_full_workflow(monkeypatch):
    assert check(site(), monkeypatch) == []


def test_a_status_no_transition_leads_to_is_reported(monkeypatch):
    problems = check(site(without_transition="41"), monkeypatch)  # no "Wait for support"
    assert problems == ["status: 'Waiting for support' cannot be reached from To Do in the workflow "
                        "of ENG/Escalation (learned from the transitions of one issue per status)"]


def test_required_screen_fields_and_unknown_resolutions_are_reported(monkeypatch):
    problems = check(site(), monkeypatch, transition_fields={"Resolved": {"resolution": "Fixed"}})
    assert any(p.startswith("transition_fields.Resolved.resolution: 'Fixed' is not allowed on the "
                            "transition screen (allowed: Done, Won't Do") for p in problems), problems
    assert any(p.startswith("transition_fields.Done.resolution: the transition 'Close' (Resolved -> "
                            "Done) requires 'Resolution'") for p in problems), problems
