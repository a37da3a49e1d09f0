"""`tiersync trace` on the demo's data: every value written names its source, version, rule, run."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from core.audit import AuditLog
from core.decision import Decision, Observation, RuleHit
from core.mapping import load_mapping, resolve_mapping_path
from core.model import Escalation
from core.provenance import lineage, source_rows
from core.store import Store
from sync import app

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    result = runner.invoke(app, ["demo", "--store", str(folder / "demo.db"),
                                 "--workdir", str(folder / "work")])
    assert result.exit_code == 0, result.output
    return folder


def _trace(demo, record: str, *extra: str) -> list[dict]:
    result = runner.invoke(app, ["trace", record, "--json", *extra,
                                 "--config", str(demo / "work" / "tiersync.yaml")])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


def _writes(demo) -> dict[str, list[dict]]:
    store = Store(f"sqlite:///{demo / 'demo.db'}")
    by_record: dict[str, list[dict]] = {}
    with store.transaction() as tx:
        for row in AuditLog(key=None).query(tx):
            if row["action"] in ("updated", "created", "create-found-existing"):
                by_record.setdefault(f"{row['tracker']}:{row['remote_id']}", []).append(row)
    store.close()
    return by_record


@pytest.mark.e2e
def test_every_value_written_in_the_demo_names_source_version_rule_and_run(demo):
    writes = _writes(demo)
    assert {record.split(":")[0] for record in writes} == {"zendesk", "azure_devops", "jira"}
    for record, entries in writes.items():
        traced = _trace(demo, record)
        assert len({(v["seq"]) for v in traced}) == len(entries), record
        for value in traced:
            assert value["source"] and value["rule"] and value["run_id"], value
            assert value["source_version"] or value["escalation_version"], value
            assert value["source_run"] and value["entry"], value
        for entry in entries:
            if entry["action"] == "updated":
                paths = {v["path"] for v in traced if v["run_id"] == entry["run_id"]}
                assert set(entry["after"]) <= paths, (record, entry["after"])
        times = [v["at"] for v in traced]
        assert times == sorted(times, reverse=True)  # newest first


@pytest.mark.e2e
def test_why_the_azure_devops_item_says_sev_2(demo):
    [item] = [r for r in _writes(demo) if r.startswith("azure_devops:")]
    [value] = _trace(demo, item, "--field", "severity")
    assert value["path"] == "Microsoft.VSTS.Common.Severity" and value["value"] == "2 - High"
    assert value["source"].startswith("zendesk:") and value["source_entry"] == "fields.severity"
    assert value["rule"] == "mapping" and value["source_mapping"].endswith("zendesk.yaml")
    assert value["entry"] == "fields.severity" and value["replaced"] is None
    text = runner.invoke(app, ["trace", item, "--field", "Microsoft.VSTS.Common.Severity",
                               "--config", str(demo / "work" / "tiersync.yaml")]).output
    assert "'2 - High'" in text and "zendesk.yaml: fields.severity" in text


@pytest.mark.e2e
def test_a_later_write_names_what_it_replaced(demo):
    [item] = [r for r in _writes(demo) if r.startswith("azure_devops:")]
    states = _trace(demo, item, "--field", "state")
    # tier 2 proposed the solution in Azure DevOps itself; tier 1 then closed the ticket, and
    # tiersync's write of "Closed" replaced the value the person had set
    newest, first = states[0], states[-1]
    assert (newest["value"], newest["replaced"]) == ("Closed", "Solution Proposed")
    assert newest["source"].startswith("zendesk:") and first["replaced"] is None


def test_policy_values_name_the_rule_of_their_own_step():
    esc = Escalation(severity=2)
    obs = Observation(tracker="zendesk", remote_id="7", changes={"severity": 2},
                      updated_at=esc.created_at, version="v3")
    decision = Decision().merge(Decision(changes={"queue": "Q"},
                                         hits=[RuleHit("routing", "partner-technical")]))
    decision.merge(Decision(hits=[RuleHit("sla", "clock.started")]))
    mappings = {"zendesk": load_mapping(resolve_mapping_path("zendesk"))}
    rows = {r["field"]: r for r in source_rows(esc, ["severity", "queue"], obs, decision,
                                                mappings, "run-1", esc.created_at)}
    assert rows["severity"]["rule"] == "mapping" and rows["severity"]["entry"] == "fields.severity"
    assert rows["queue"]["rule"] == "routing.partner-technical" and rows["queue"]["entry"] is None
    assert rows["*"]["rule"] == "routing.partner-technical,sla.clock.started"
    target = load_mapping(resolve_mapping_path("azure_devops"))
    items = lineage(target, {"Microsoft.VSTS.Common.Severity": "2 - High",
                             "System.WorkItemType": "Engagement Item"},
                    {}, {"severity": rows["severity"], "*": rows["*"]}, {}, "routing.x")
    assert items["Microsoft.VSTS.Common.Severity"]["source"] == "zendesk:7"
    assert items["Microsoft.VSTS.Common.Severity"]["source_version"] == "v3"
    assert items["System.WorkItemType"]["rule"] == "mapping.create_defaults"
