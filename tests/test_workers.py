"""Several daemons on one store (issue 12): leases, claims, takeover, standby, concurrent pulls.

The PostgreSQL tests run real ``tiersync daemon`` processes over the simulators on the server
that .ci/run starts (TIERSYNC_TEST_POSTGRES_URL); under CI they never skip.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import defaultdict

import pytest
import yaml
from sqlalchemy import create_engine, text

from bench.chaos_process import StoreProbe, SyncProcess, wait_until
from bench.chaos_scenario import PHASES, People, make_cases
from core.engine import SyncEngine
from simulators.profile import Profile
from harness.sandbox import Sandbox

from tests.pg import URL, needs_postgres
FAST = {"backoff_seconds": 0.2, "max_backoff_seconds": 2.0}
LEASE = 3.0
CONNECTORS = ("zendesk", "azure_devops", "jira")


@pytest.fixture
def pg_url():
    engine = create_engine(URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return URL


def _configure(box: Sandbox, lease: float = LEASE) -> None:
    config = yaml.safe_load(box.config_path.read_text())
    config["daemon"] = {"lease_seconds": lease}
    config["log_level"] = "INFO"
    box.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def _pulls(probe: StoreProbe) -> dict[str, str]:
    """pull lease -> holder, of the leases not expired."""
    rows = probe.query("SELECT name, holder FROM leases WHERE name LIKE 'pull:%' AND expires_at > ?",
                       (datetime_now(),))
    return {name[len("pull:"):]: holder for name, holder in rows}


def datetime_now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)


def _holder_of(probe: StoreProbe, pid: int) -> str:
    rows = probe.query("SELECT holder FROM leases WHERE name LIKE ?", (f"worker:%-{pid}-%",))
    return rows[0][0] if rows else ""


@needs_postgres
@pytest.mark.e2e
def test_two_daemons_share_the_work_without_duplicates_or_out_of_order_actions(tmp_path, pg_url):
    with Sandbox(tmp_path, store_url=pg_url, engine=FAST) as box:
        _configure(box)
        people = People(box, make_cases(10, seed=12))
        daemons = [SyncProcess(box.config_path, box.env, tmp_path / f"d{n}.log", 0.3) for n in (0, 1)]
        probe = StoreProbe(pg_url)
        probe.connectors = CONNECTORS
        for daemon in daemons:
            daemon.start()
        holders_seen: set[str] = set()
        try:
            for phase in PHASES[:3]:
                phase.act(people)
                mark = datetime_now()
                assert wait_until(lambda: (holders_seen.update(_pulls(probe).values()) or True)
                                  and probe.quiet_since(mark) and phase.done(people), 120), phase.name
        finally:
            codes = [d.stop() for d in daemons]
        assert codes == [0, 0]
        items, issues = people.ado_items(), people.jira_issues()
        assert all(len(found) == 1 for found in items.values()), items  # one mirror per case
        assert all(len(found) == 1 for found in issues.values()), issues
        assert len(items) == sum(c.open for c in people.cases)
        done = probe.query("SELECT id, escalation_id, connector, claimed_by, updated_at FROM outbox "
                           "WHERE state = 'done' ORDER BY id")
        senders = {row[3] for row in done}
        # both pulled; who sends is a race (the daemon that queued an action often claims it first:
        # sharing claims between workers is proven deterministically in tests/test_claims.py)
        assert len(holders_seen) == 2, holders_seen
        assert senders and senders <= holders_seen, (holders_seen, senders)
        by_record = defaultdict(list)
        for action_id, escalation, connector, _, finished in done:
            by_record[(escalation, connector)].append((action_id, finished))
        for record, actions in by_record.items():  # a record's actions finished in queue order
            finish_times = [finished for _, finished in actions]
            assert finish_times == sorted(finish_times), (record, actions)
        probe.close()


@needs_postgres
@pytest.mark.e2e
def test_a_sigkilled_daemons_pull_leases_are_taken_over_within_the_lease(tmp_path, pg_url):
    with Sandbox(tmp_path, store_url=pg_url, engine=FAST) as box:
        _configure(box)
        first = SyncProcess(box.config_path, box.env, tmp_path / "first.log", 0.3)
        second = SyncProcess(box.config_path, box.env, tmp_path / "second.log", 0.3)
        probe = StoreProbe(pg_url)
        first.start()
        try:
            assert wait_until(lambda: len(_pulls(probe)) == 3, 60), "the first daemon pulls all three"
            first_id = _holder_of(probe, first.proc.pid)
            assert set(_pulls(probe).values()) == {first_id}
            second.start()
            assert wait_until(lambda: len(set(_pulls(probe).values())) == 2, 60), "pulls spread"
            second_id = _holder_of(probe, second.proc.pid)
            first.kill(restart=False)
            killed = time.monotonic()
            assert wait_until(lambda: set(_pulls(probe).values()) == {second_id}
                              and len(_pulls(probe)) == 3, 30, poll=0.1)
            takeover = time.monotonic() - killed
        finally:
            code = second.stop()
        assert code == 0
        # expiry (3 s) plus at most one heartbeat (1 s) and the store's time to answer
        assert takeover <= LEASE + LEASE / 3 + 2.0, takeover
        probe.close()


@pytest.mark.e2e
@needs_postgres
@pytest.mark.e2e
def test_a_daemon_started_with_other_policy_files_takes_over_and_the_older_one_steps_back(
        tmp_path, pg_url):
    from core.mapping import SHIPPED
    with Sandbox(tmp_path, store_url=pg_url, engine=FAST) as box:
        _configure(box)
        policy = tmp_path / "policy-v2.yaml"
        policy.write_text((SHIPPED / "policy.yaml").read_text().replace(
            "announce_state_changes: true", "announce_state_changes: false"))
        config = yaml.safe_load(box.config_path.read_text())
        config["policy"] = str(policy)
        (tmp_path / "v2.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        old = SyncProcess(box.config_path, box.env, tmp_path / "old.log", 0.3)
        new = SyncProcess(tmp_path / "v2.yaml", box.env, tmp_path / "new.log", 0.3)
        probe = StoreProbe(pg_url)
        old.start()
        try:
            assert wait_until(lambda: len(_pulls(probe)) == 3, 60), "the first daemon pulls all three"
            new.start()
            assert wait_until(lambda: (lambda held: len(held) == 3 and set(held.values())
                                       == {_holder_of(probe, new.proc.pid)})(_pulls(probe)), 30)
            assert wait_until(lambda: "steps back" in (tmp_path / "old.log").read_text(), 10)
            People(box, make_cases(1, seed=5)).intake()
            assert wait_until(lambda: probe.query("SELECT count(*) FROM escalations")[0][0] == 1, 60)
            sent = "SELECT DISTINCT claimed_by FROM outbox WHERE state = 'done'"
            assert wait_until(lambda: probe.query(sent), 60), "the new mirrors were sent"
            senders = {row[0] for row in probe.query(sent)}
            assert senders == {_holder_of(probe, new.proc.pid)}, senders
        finally:
            codes = [old.stop(), new.stop()]
        assert codes == [0, 0]
        probe.close()


def test_standby_on_sqlite_waits_and_takes_over_when_the_holder_exits(tmp_path):
    with Sandbox(tmp_path, engine=FAST) as box:
        _configure(box)
        active = SyncProcess(box.config_path, box.env, tmp_path / "active.log", 0.3)
        standby = SyncProcess(box.config_path, box.env, tmp_path / "standby.log", 0.3,
                              extra=("--standby",))
        probe = StoreProbe(tmp_path / "tiersync.db")
        active.start()
        assert wait_until(lambda: probe.cycles() > 0, 60)
        standby.start()
        time.sleep(2.0)
        assert standby.proc.poll() is None, "a standby waits instead of exiting 3"
        assert "daemon started" not in (tmp_path / "standby.log").read_text()
        assert active.stop() == 0
        exited = datetime_now()
        People(box, make_cases(1, seed=3)).intake()
        assert wait_until(lambda: probe.started_since(exited), 30), "the standby took over"
        assert wait_until(lambda: "daemon started" in (tmp_path / "standby.log").read_text(), 10)
        assert wait_until(lambda: probe.query("SELECT count(*) FROM escalations")[0][0] == 1, 60)
        assert standby.stop() == 0


SLOW_MS = 4000


def test_a_slow_tracker_does_not_delay_another_trackers_records(tmp_path):
    # lenient profile: Zendesk's export hold-back would keep the new ticket out of this cycle
    with Sandbox(tmp_path, engine=FAST, profile=Profile(realistic=False)) as box:
        People(box, make_cases(1, seed=5)).intake()
        for slow in ("azure_devops", "jira"):
            box.sims[slow].set_faults(latency_ms=SLOW_MS)
        engine = box.engine()
        # the slow trackers first: pulled one after another, Zendesk would wait for both
        engine.connectors = {name: engine.connectors[name] for name in ("azure_devops", "jira", "zendesk")}
        assert _seconds_to_open(engine) < SLOW_MS / 1000  # before one slow request is answered
        engine.settings.concurrent_pulls = False  # the control: one after another, it waits
        People(box, make_cases(2, seed=6)[1:]).intake()
        assert _seconds_to_open(engine) >= 2 * SLOW_MS / 1000


def _seconds_to_open(engine: SyncEngine) -> float:
    """Seconds from the cycle's start until the new Zendesk ticket's escalation is opened (the
    cycle is then told to stop)."""
    from sqlalchemy import func, select
    from core import schema as t

    def count() -> int:
        with engine.store.transaction() as tx:
            return tx.execute(select(func.count()).select_from(t.escalations)).scalar()

    before, stop = count(), threading.Event()
    cycle = threading.Thread(target=engine.run_cycle, kwargs={"stop": stop.is_set})
    began = time.monotonic()
    cycle.start()
    while count() == before and cycle.is_alive():
        time.sleep(0.05)
    took = time.monotonic() - began
    stop.set()
    cycle.join()
    assert count() > before, "the cycle opened nothing"
    return took
