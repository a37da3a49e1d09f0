"""/metrics parsed by prometheus_client's own text parser, and /readyz's transitions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from core.errors import AuthError
from core.readiness import Health, health_routes
from core.listener import Listener
from core.metrics import Metrics, metrics_route
from core.observed import ObservedConnector
from core.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'metrics.db'}")
    store.migrate()
    yield store
    store.close()


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def served(store):
    clock = Clock()
    metrics, health = Metrics(store, policy=None), Health(store, 10.0, clock=clock)
    listener = Listener("127.0.0.1", 0)
    metrics_route(listener, metrics, health)
    health_routes(listener, health)
    listener.start()
    yield listener.address, metrics, health, clock
    listener.stop()


def scrape(address: str) -> dict[str, dict]:
    reply = requests.get(f"{address}/metrics", timeout=10)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/plain")
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_parse_and_carry_the_store_gauges(served, store):
    address, metrics, _health, _clock = served
    now = datetime.now(timezone.utc)
    with store.transaction() as tx:
        for kind in ("create", "update"):
            store.enqueue(tx, escalation_id="e1", connector="jira", kind=kind, remote_id=None,
                          payload={}, dedupe_key=f"k-{kind}", rule=None, now=now - timedelta(seconds=90))
        store.quarantine(tx, connector="zendesk", remote_id="9", version="v1", reason="bad",
                         payload={}, run_id="r", now=now)
    metrics.webhooks.labels("zendesk", "bad-signature").inc(3)
    metrics.rate_limited("jira", 2.5)
    metrics.lag.labels("read").observe(0.7)
    samples = scrape(address)
    assert samples["tiersync_outbox_depth"][()] == 2
    assert samples["tiersync_outbox_oldest_age_seconds"][()] >= 89
    assert samples["tiersync_outbox_actions"][(("kind", "create"), ("state", "pending"))] == 1
    assert samples["tiersync_quarantine_size"][()] == 1
    assert samples["tiersync_dead_letters"][()] == 0
    assert samples["tiersync_webhooks_total"][(("result", "bad-signature"), ("tracker", "zendesk"))] == 3
    assert samples["tiersync_rate_limit_waits_total"][(("tracker", "jira"),)] == 1
    assert samples["tiersync_rate_limit_wait_seconds_total"][(("tracker", "jira"),)] == 2.5
    assert samples["tiersync_propagation_lag_seconds_count"][(("stage", "read"),)] == 1
    assert samples["tiersync_ready"][()] == 0  # no cycle yet
    assert not any(name.endswith("_created") for name in samples)


def test_cycle_reports_feed_the_counters(served):
    address, metrics, _health, _clock = served
    from core.engine import CycleReport
    metrics.record_report(CycleReport(run_id="r", pulled=5, changed=2, echoes=1, actions_done=3,
                                      actions_dead=1, stale=2), "poll", 0.4)
    samples = scrape(address)
    assert samples["tiersync_records_pulled_total"][()] == 5
    assert samples["tiersync_changes_total"][()] == 2
    assert samples["tiersync_stale_reads_total"][()] == 2
    assert samples["tiersync_actions_total"][(("result", "dead"),)] == 1
    assert samples["tiersync_cycles_total"][(("mode", "poll"), ("status", "partial"))] == 1
    assert samples["tiersync_cycle_duration_seconds_count"][(("mode", "poll"),)] == 1


def readyz(address: str) -> tuple[int, str]:
    reply = requests.get(f"{address}/readyz", timeout=10)
    return reply.status_code, reply.text


def test_readiness_transitions(served, store):
    address, _metrics, health, clock = served
    assert requests.get(f"{address}/healthz").status_code == 200
    assert readyz(address) == (503, "not ready: no sync cycle has finished yet\n")
    health.cycle_finished()
    assert readyz(address) == (200, "ready\n")
    clock.now += timedelta(seconds=29)
    assert readyz(address)[0] == 200
    clock.now += timedelta(seconds=2)  # 31 s > 3 x 10 s
    status, text = readyz(address)
    assert status == 503 and "more than 3 x 10s" in text
    health.cycle_finished()
    assert readyz(address)[0] == 200
    health.auth_failed("jira", "HTTP 401")
    assert readyz(address) == (503, "not ready: tracker jira is failing authentication\n")
    health.auth_ok("jira")
    assert readyz(address)[0] == 200
    health.stepped_back = "daemon h-1 runs other policy or mapping files (rules ab); this one steps back"
    assert readyz(address) == (503, f"not ready: {health.stepped_back}\n")
    health.stepped_back = None
    assert readyz(address)[0] == 200


def test_store_unreachable_is_not_ready(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")  # the folder does not exist
    health = Health(store, 10.0)
    health.cycle_finished()
    assert health.problems() and health.problems()[0].startswith("store unreachable")


class FailingConnector:
    name = "jira"

    def __init__(self):
        self.refuse = True

    def get(self, remote_id):
        if self.refuse:
            raise AuthError("HTTP 401: the tracker refused credentials", tracker="jira", status=401)
        return None


def test_a_connector_refusing_credentials_makes_the_daemon_unready_until_it_accepts(store):
    metrics, health = Metrics(store), Health(store, 10.0)
    health.cycle_finished()
    inner = FailingConnector()
    observed = ObservedConnector(inner, metrics, health)
    with pytest.raises(AuthError):
        observed.get("ENG-1")
    assert health.problems() == ["tracker jira is failing authentication"]
    assert metrics.auth_failing.labels("jira")._value.get() == 1
    inner.refuse = False
    observed.get("ENG-1")
    assert health.problems() == []
