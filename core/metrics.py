"""The daemon's Prometheus metrics (``/metrics``, prometheus-client).

Counters follow the cycle reports (records pulled, changes, echoes, ignored, quarantined, stale reads,
actions by result), webhooks by tracker and result, and rate-limit waits per tracker. Gauges
that describe the store (outbox by kind and state, depth and oldest pending age, dead letters,
quarantine size, open SLA warnings and breaches) are read from the store at scrape time by a
custom collector, so they are right even when another process changed the store.
Propagation lag has two stages: ``read`` (a change in a tracker until tiersync read it) and
``write`` (an action queued until the tracker accepted it).
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Iterator

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               disable_created_metrics, generate_latest)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from core import schema as t
from core.model import utcnow

LAG_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
REPORT_COUNTERS = {"pulled": "records_pulled", "changed": "changes", "opened": "escalations_opened",
                   "echoes": "echoes", "ignored": "ignored", "quarantined": "quarantined",
                   "conflicts": "conflicts", "stale": "stale_reads"}
ACTION_RESULTS = {"actions_done": "done", "actions_retrying": "retrying", "actions_dead": "dead"}


class Metrics:
    def __init__(self, store: Any = None, policy: Any = None):
        disable_created_metrics()  # no *_created series: they double the page and say little
        self.registry = CollectorRegistry()
        r = self.registry
        self.counters = {key: Counter(f"tiersync_{name}", f"{name.replace('_', ' ')} in sync cycles",
                                      registry=r) for key, name in REPORT_COUNTERS.items()}
        self.actions = Counter("tiersync_actions", "outbox actions applied, by result", ["result"],
                               registry=r)
        self.cycles = Counter("tiersync_cycles", "sync passes, by mode and status",
                              ["mode", "status"], registry=r)
        self.cycle_seconds = Histogram("tiersync_cycle_duration_seconds", "duration of a sync pass",
                                       ["mode"], registry=r)
        self.last_cycle = Gauge("tiersync_last_cycle_finished_timestamp_seconds",
                                "when the last polling cycle finished (Unix time)", registry=r)
        self.webhooks = Counter("tiersync_webhooks", "webhook requests, by tracker and result",
                                ["tracker", "result"], registry=r)
        self.hints_coalesced = Counter("tiersync_webhook_hints_coalesced",
                                       "webhook hints for a record already waiting", ["tracker"],
                                       registry=r)
        self.rate_waits = Counter("tiersync_rate_limit_waits", "waits on a tracker's rate limit",
                                  ["tracker"], registry=r)
        self.rate_wait_seconds = Counter("tiersync_rate_limit_wait_seconds",
                                         "seconds spent waiting on rate limits", ["tracker"],
                                         registry=r)
        self.rate_remaining = Gauge("tiersync_rate_limit_remaining",
                                    "requests left in the tracker's current rate-limit window, "
                                    "where the tracker says", ["tracker"], registry=r)
        self.lag = Histogram("tiersync_propagation_lag_seconds", "propagation lag by stage",
                             ["stage"], buckets=LAG_BUCKETS, registry=r)
        self.auth_failing = Gauge("tiersync_tracker_auth_failing",
                                  "1 while a tracker refuses tiersync's credentials", ["tracker"],
                                  registry=r)
        self.ready = Gauge("tiersync_ready", "1 when /readyz answers ready", registry=r)
        self._written_after: datetime | None = None
        self._lock = threading.Lock()
        if store is not None:
            r.register(StoreCollector(store, policy))

    # -- updates ----------------------------------------------------------------------------------
    def record_report(self, report: Any, mode: str, seconds: float) -> None:
        for key, counter in self.counters.items():
            counter.inc(getattr(report, key, 0))
        for key, result in ACTION_RESULTS.items():
            self.actions.labels(result).inc(getattr(report, key, 0))
        self.cycles.labels(mode, "ok" if report.exit_code == 0 else "partial").inc()
        self.cycle_seconds.labels(mode).observe(seconds)

    def rate_limited(self, tracker: str, seconds: float) -> None:
        self.rate_waits.labels(tracker).inc()
        self.rate_wait_seconds.labels(tracker).inc(max(0.0, seconds or 0.0))

    def observe_writes(self, store: Any) -> None:
        """Observe the write-stage lag of actions done since the last call."""
        with self._lock, store.transaction() as tx:
            query = select(t.outbox.c.created_at, t.outbox.c.updated_at).where(t.outbox.c.state == "done")
            if self._written_after is not None:
                query = query.where(t.outbox.c.updated_at > self._written_after)
            rows = tx.execute(query).all()
            for created, updated in rows:
                self.lag.labels("write").observe(max(0.0, (updated - created).total_seconds()))
                if self._written_after is None or updated > self._written_after:
                    self._written_after = updated
            if self._written_after is None:
                self._written_after = utcnow()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StoreCollector:
    """Gauges read from the store when Prometheus scrapes."""

    def __init__(self, store: Any, policy: Any = None):
        self.store = store
        self.policy = policy

    def describe(self) -> list:
        return []  # collected only at scrape time (the store may be unreachable at start)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        with self.store.transaction() as tx:
            by_kind = tx.execute(select(t.outbox.c.kind, t.outbox.c.state, func.count())
                                 .group_by(t.outbox.c.kind, t.outbox.c.state)).all()
            oldest = tx.execute(select(func.min(t.outbox.c.created_at))
                                .where(t.outbox.c.state == "pending")).scalar()
            quarantined = tx.execute(select(func.count()).select_from(t.quarantine)
                                     .where(t.quarantine.c.resolved_at.is_(None))).scalar()
        yield _family("tiersync_outbox_actions", "outbox actions by kind and state",
                      ["kind", "state"], {(k, s): n for k, s, n in by_kind})
        yield _gauge("tiersync_outbox_depth", "actions waiting in the outbox",
                     sum(n for _k, s, n in by_kind if s == "pending"))
        age = (now - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        yield _gauge("tiersync_outbox_oldest_age_seconds", "age of the oldest pending action", age)
        yield _gauge("tiersync_dead_letters", "dead-lettered actions",
                     sum(n for _k, s, n in by_kind if s == "dead"))
        yield _gauge("tiersync_quarantine_size", "quarantined records not yet resolved", quarantined)
        if self.policy is not None:
            yield _family("tiersync_sla_open", "open escalations' SLA metrics in warning or breach",
                          ["metric", "status"], self._sla(now))

    def _sla(self, now: datetime) -> dict[tuple[str, str], int]:
        from core.policy.report import status_rows
        counts: dict[tuple[str, str], int] = {}
        for batch in self.store.iter_escalations(open_only=True):
            for row in status_rows([item.escalation for item in batch], self.policy, now):
                for metric, cell in (row.get("sla") or {}).items():
                    if cell.get("status") in ("warning", "breached"):
                        key = (metric, cell["status"])
                        counts[key] = counts.get(key, 0) + 1
        from core.model import SlaMetricName
        for metric in (m.value for m in SlaMetricName):
            for status in ("warning", "breached"):
                counts.setdefault((metric, status), 0)
        return counts


def _aware(moment: datetime) -> datetime:
    from datetime import timezone
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value or 0))


def _family(name: str, doc: str, labels: list[str], values: dict[tuple, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), float(value))
    return family


def metrics_route(listener: Any, metrics: Metrics, health: Any = None) -> None:
    from werkzeug.wrappers import Response

    def handler(_request) -> Response:
        if health is not None:
            metrics.ready.set(0 if health.problems() else 1)
        return Response(metrics.exposition(), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
    listener.route("/metrics", handler)
