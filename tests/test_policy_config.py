"""The policy file: the shipped file loads with the seeds' numbers; errors name file, key, value."""
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.model import Severity, SupportPlan
from core.policy import EscalationPolicy, load_policy, parse_policy
from tests.fixtures.policy.builders import FIXTURES, SHIPPED, shipped_data


def test_shipped_policy_loads():
    policy = load_policy(SHIPPED)
    assert isinstance(policy, EscalationPolicy)
    assert set(policy.calendars) == {"noc-24x7", "pacific-business-hours"}


def test_shipped_policy_encodes_seed_002_minimum_ages():
    ages = load_policy(SHIPPED).config.management_escalation.minimum_age_hours
    table = {sev.value: (age.premium, age.standard) for sev, age in ages.items()}
    assert table == {2: (4, 8), 3: (8, 16), 4: (16, 24)}
    assert load_policy(SHIPPED).config.management_escalation.never_for == [Severity.SEV1]
    assert load_policy(SHIPPED).config.premium_plans == [SupportPlan.ENTERPRISE]


def test_shipped_policy_has_targets_for_every_severity_and_plan():
    sla = load_policy(SHIPPED).config.sla
    for severity in Severity:
        policy = next(p for p in sla.policies if severity in p.targets)
        for plan in SupportPlan:
            row = policy.targets[severity][plan]
            assert row.acknowledgement < row.first_solution < row.close


def test_minimal_policy_takes_defaults():
    policy = load_policy(FIXTURES / "minimal.yaml")
    assert policy.config.management_escalation.minimum_age_hours[Severity.SEV3].standard == 16
    assert policy.config.routing.default.fields == {"jira": {"project": "SUP"}}


def test_load_policy_accepts_a_string_path():
    assert load_policy(str(SHIPPED)).source == str(SHIPPED)


def _problems(edit) -> str:
    data = shipped_data()
    edit(data)
    with pytest.raises(ConfigError) as caught:
        parse_policy(data, "policy.yaml")
    return str(caught.value)


def _key(node, part: str):
    """A list index or a dict key as the YAML parsed it (severity keys are numbers)."""
    if isinstance(node, list):
        return int(part)
    if part not in node and part.isdigit() and int(part) in node:
        return int(part)
    return part


def _set(path: str, value):
    def edit(data):
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[_key(node, part)]
        node[_key(node, last)] = value
    return edit


@pytest.mark.parametrize("edit, expected", [
    (_set("routing.rules.0.when", {"sevrity": 1}),
     "policy.yaml: routing.rules.0.when: 'sevrity' is not a field"),
    (_set("routing.rules.0.when", {"severity": 5}),
     "routing.rules.0.when: severity: 5 is not a valid value"),
    (_set("routing.rules.0.tier", "L9"), "routing.rules.0.tier: Input should be 'L1'"),
    (_set("routing.rules.0.fields", {"zendesk": {"x": 1}}), "not in mirror_to"),
    (_set("routing.default.name", "security-incident"), "routing rule names must be unique"),
    (_set("sla.policies.0.calendar", "nope"),
     "policy.yaml: sla.policies.0.calendar: unknown calendar (value: 'nope')"),
    (_set("sla.warning_at", 1.5), "sla.warning_at: Input should be less than 1 (value: 1.5)"),
    (_set("sla.policies.1.targets.2.enterprise.close", -3),
     "sla.policies.1.targets.2.enterprise.close: Input should be greater than 0 (value: -3)"),
    (_set("sla.policies.1.targets.7", {}), "sla.policies.1.targets.7.[key]"),
    (_set("sla.pause_when", ["closed"]), "cannot pause in a closed state"),
    (_set("calendars.pacific-business-hours.timezone", "Pacific/Nowhere"),
     "calendars.pacific-business-hours.timezone: unknown time zone"),
    (_set("calendars.pacific-business-hours.holidays", {"country": "XX"}),
     "calendars.pacific-business-hours.holidays: holidays: Country XX"),
    (_set("validation.mandatory.0.fields", ["title", "nope"]),
     "validation.mandatory.0.fields: not fields of the escalation model: ['nope']"),
    (_set("validation.entitlement.plans", ["platinum"]), "validation.entitlement.plans.0"),
    (_set("management_escalation.levels", {1: {"audience": ["a"]}}), "give levels 1, 2, 3 and 4"),
    (_set("management_escalation.refusal.too_early", "wait {bogus}"), "unknown placeholder 'bogus'"),
    (_set("management_escalation.age_clock", "business"),
     "management_escalation.calendar: unknown calendar (value: None)"),
    (_set("tiers.daily_update.calendar", "weekdays"), "tiers.daily_update.calendar: unknown"),
    (_set("surprise", True), "surprise: Extra inputs are not permitted"),
])
def test_errors_name_file_key_and_value(edit, expected):
    assert expected in _problems(edit)


def test_every_problem_is_reported():
    with pytest.raises(ConfigError) as caught:
        load_policy(FIXTURES / "broken.yaml")
    problems = caught.value.problems
    assert len(problems) == 3
    assert all(line.startswith(str(FIXTURES / "broken.yaml")) for line in problems)


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match=r"policy.yaml: \(top level\): expected a mapping"):
        parse_policy(["routing"], "policy.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text("routing:\n  rules: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(path)


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")
