"""The operations examples are valid: systemd units (`systemd-analyze verify`), Kubernetes
manifests against the Kubernetes OpenAPI schemas (kubernetes-validate, strict), and the
Prometheus alert rules (rule file structure per prometheus.io/docs/prometheus/latest/
configuration/alerting_rules/, every expression parsed by a PromQL parser, every metric one
that tiersync exposes)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import promql_parser
import pytest
import yaml

from core.metrics import Metrics

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
UNITS = ["tiersync.service", "tiersync-once.service", "tiersync-once.timer"]


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is missing: apt-get install systemd (.ci/run does)"
    return found


def test_systemd_units_verify(tmp_path):
    tool = _systemd_analyze()
    tiersync = Path(sys.executable).with_name("tiersync")
    assert tiersync.exists(), "the tiersync script beside this interpreter"
    for unit in UNITS:  # the real binary path here: verify checks that ExecStart is executable
        text = (EXAMPLES / "systemd" / unit).read_text()
        (tmp_path / unit).write_text(text.replace("/opt/tiersync/venv/bin/tiersync", str(tiersync)))
    result = subprocess.run([tool, "verify", *(str(tmp_path / u) for u in UNITS)],
                            capture_output=True, text=True, timeout=120)
    problems = [line for line in result.stderr.splitlines() if "tiersync" in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_systemd_verify_would_catch_a_broken_unit(tmp_path):
    tool = _systemd_analyze()
    (tmp_path / "broken.service").write_text("[Service]\nExecStart=relative/tiersync\n")
    result = subprocess.run([tool, "verify", str(tmp_path / "broken.service")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def manifests() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((EXAMPLES / "kubernetes").glob("*.yaml")):
        found.extend((f"{path.name}:{doc['kind']}", doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


@pytest.mark.parametrize("name, manifest", manifests(), ids=[n for n, _ in manifests()])
def test_kubernetes_manifests_match_the_schemas(name, manifest):
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)


def test_the_deployment_probes_health_and_readiness():
    deployment = next(m for n, m in manifests() if m["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--listen" in container["args"]
    cronjob = next(m for n, m in manifests() if m["kind"] == "CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_the_schema_check_would_catch_a_mistake():
    deployment = next(m for n, m in manifests() if m["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


def exposed_names() -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families
    from core.store import Store
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/m.db")
        store.migrate()
        metrics = Metrics(store)
        metrics.rate_limited("t", 0)
        metrics.rate_remaining.labels("t").set(1)
        metrics.auth_failing.labels("t").set(0)
        metrics.webhooks.labels("t", "accepted").inc(0)
        metrics.actions.labels("dead").inc(0)
        text = metrics.exposition().decode()
        store.close()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    return names | {"tiersync_sla_open"}  # collected when a policy is loaded


def test_prometheus_alert_rules_are_valid_and_use_exposed_metrics():
    data = yaml.safe_load((EXAMPLES / "prometheus" / "tiersync-alerts.yaml").read_text())
    assert set(data) == {"groups"}
    exposed = exposed_names()
    seen_alerts = set()
    for group in data["groups"]:
        assert set(group) <= {"name", "interval", "limit", "rules"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= RULE_KEYS and {"alert", "expr"} <= set(rule), rule
            assert rule["alert"] not in seen_alerts and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            seen_alerts.add(rule["alert"])
            if "for" in rule:
                assert re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", rule["for"])
            promql_parser.parse(rule["expr"])  # raises ValueError on a syntax error
            for metric in re.findall(r"\btiersync_[a-z_]+", rule["expr"]):
                assert metric in exposed, f"{rule['alert']}: {metric} is not exposed"
            assert all(isinstance(v, str) for v in (rule.get("labels") or {}).values())
    assert {"TiersyncDeadLetters", "TiersyncQuarantine", "TiersyncNotReady",
            "TiersyncRateLimitSaturated"} <= seen_alerts


def test_the_promql_parser_would_catch_a_mistake():
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(tiersync_dead_letters[5m])")
