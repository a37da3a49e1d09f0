"""Chaos bench: never duplicate, never lose, never loop (issue 6).

Drives N escalations through the three tracker simulators (Zendesk, Azure DevOps, Jira) while
they inject faults (5xx, 429 with Retry-After, connections dropped before and after the write,
latency) and while the real ``tiersync daemon`` subprocess is killed with SIGKILL at random
moments and restarted. Then compares every tracker's final state with a fault-free, kill-free
run of the same seeded scenario and prints one summary line:

    escalations=N kills=K duplicates=D lost_updates=L loops=P deadletters_unresolved=U converged=yes|no

Run: ``python bench/chaos.py --escalations 300 --kills 20`` (or ``python -m bench.chaos``);
``--help`` lists options.
Exit code 0 when converged=yes (D = L = P = U = 0, nothing pending), else 1.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

if __package__ in (None, ""):  # run as a script: python bench/chaos.py
    # the repository instead of bench/ itself, whose requests.py would shadow ``requests``
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.chaos_measure import compare, self_duplicates
from bench.chaos_process import StoreProbe, SyncProcess, utcnow, wait_until
from bench.chaos_scenario import PHASES, People, make_cases
from bench.chaos_webhooks import Forger, configure as webhook_sections, listen_ports, webhooks_off, webhooks_on
from bench.chaos_workers import Fleet, Killer
from simulators.profile import Profile
from harness.sandbox import Sandbox

log = logging.getLogger("tiersync.bench.chaos")
ENGINE = {"backoff_seconds": 0.2, "max_backoff_seconds": 2.0, "max_attempts": 8}


@dataclass
class Options:
    escalations: int = 300
    kills: int = 20
    seed: int = 7
    interval: float = 0.1
    error_rate: float = 0.10
    rate_429: float = 0.05
    retry_after: float = 1.0
    drop_rate: float = 0.02
    drop_after_rate: float = 0.02
    latency_ms: float = 0.0
    jitter_ms: float = 2.0
    connector_max_wait: float = 0.02
    page_size: int = 10
    kill_delay: float = 3.0
    extra_cycles: int = 3
    phase_timeout: float | None = None
    workdir: Path | None = None
    keep: bool = False
    sequential: bool = False
    workers: int = 1  # daemons at once in the chaos run (several need --store postgresql)
    store: str = "sqlite"  # sqlite | postgresql (a throwaway server) | a postgresql URL
    kill_every: float = 20.0  # with several workers: one is SIGKILLed this often
    lease_seconds: float = 15.0
    # the simulators' realistic profile (simulators/profile.py) with the vendors' time windows
    # (Zendesk's one-minute export hold-back, rate windows, index lag) at this scale
    time_scale: float = 0.02
    lenient: bool = False
    # the chaos run's webhooks (on by default with several workers): dropped and duplicated at
    # these rates, plus a forged webhook every forge_every seconds (bench/chaos_webhooks.py)
    webhooks: bool | None = None
    webhook_drop_rate: float = 0.2
    webhook_duplicate_rate: float = 0.2
    forge_every: float = 2.0

    @property
    def with_webhooks(self) -> bool:
        return self.workers > 1 if self.webhooks is None else self.webhooks

    @property
    def timeout(self) -> float:
        return self.phase_timeout or 90.0 + 0.6 * self.escalations


@dataclass
class Trial:
    """What one run (reference or chaos) left behind and how it went."""

    name: str
    snapshot: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cycles: int = 0
    kills: int = 0
    starts: int = 0
    unexpected_exits: list[int] = field(default_factory=list)
    lock_refusals: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    phase_seconds: list[float] = field(default_factory=list)
    phase_timeouts: list[str] = field(default_factory=list)
    replayed: int = 0
    pending_at_end: int = 0
    dead_at_end: int = 0
    loop_writes: int = 0
    loop_actions: int = 0
    quarantined: int = 0
    sigterm_exit: int | None = None
    integrity: str = ""  # SQLite's PRAGMA integrity_check of the store after all the kills
    audit_intact: bool = False  # `tiersync audit --verify` found the hash chain whole
    takeovers: list[float] = field(default_factory=list)  # seconds from a kill to its takeover
    sent_by: dict[str, int] = field(default_factory=dict)  # actions sent, per daemon
    cpu_sync: float = 0.0  # CPU seconds of the tiersync processes (all of them, kills included)
    cpu_driver: float = 0.0  # CPU seconds of this process: the three simulators and the people
    forged: dict[str, Any] = field(default_factory=dict)  # forged webhooks sent, accepted, refused
    webhooks: dict[str, int] = field(default_factory=dict)  # the simulators' webhooks: sent, dropped, ...


def run_trial(name: str, options: Options, workdir: Path, *, chaos: bool,
              store_url: str | None = None) -> Trial:
    trial = Trial(name)
    started = time.monotonic()
    children, me = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF)
    cases = make_cases(options.escalations, options.seed)
    fleet_size = options.workers if chaos and store_url else 1
    profile = Profile(realistic=not options.lenient, time_scale=options.time_scale)
    with Sandbox(workdir, engine=ENGINE, profile=profile, store_url=store_url) as box:
        _tune_config(box.config_path, options)
        box.sims["zendesk"].export_page_size = options.page_size
        hooks = chaos and options.with_webhooks
        ports = listen_ports(fleet_size) if hooks else []
        if hooks:
            webhook_sections(box)
        extras = [("--listen", f"127.0.0.1:{port}") for port in ports] or [()] * fleet_size
        if fleet_size > 1:
            process = Fleet(box.config_path, box.env, workdir, options.interval, fleet_size, extras)
        else:
            process = SyncProcess(box.config_path, box.env, workdir / "daemon.log", options.interval,
                                  extras[0])
        probe = StoreProbe(store_url or workdir / "tiersync.db")
        if fleet_size > 1:
            probe.connectors = tuple(box.sims)
        people = People(box, cases)
        kills = _kill_plan(options) if chaos and fleet_size == 1 else {}
        killer = Killer(process, probe, options.kill_every, options.seed) if fleet_size > 1 else None
        if chaos:
            _faults_on(box, options)
        process.start()
        forger = Forger(ports, options.forge_every, options.seed, workdir / "forged.log") if hooks else None
        if hooks:
            webhooks_on(box, ports, options.webhook_drop_rate, options.webhook_duplicate_rate,
                        options.seed)
            forger.start()
        if killer:
            killer.start()
        for number, phase in enumerate(PHASES):
            _play_phase(name, number, phase, people, process, probe, kills, trial, options)
        if killer:
            killer.halt.set()
            killer.join()
            trial.takeovers = killer.result.seconds
        if forger:
            forger.halt.set()
            forger.join()
            trial.forged = asdict(forger.counts)
            trial.webhooks = _webhook_counts(box)
            webhooks_off(box, ports)
        _settle(box, process, probe, trial, options, chaos)
        _measure_loops(box, process, probe, trial, options)
        trial.sigterm_exit = process.stop()
        trial.integrity = probe.integrity()
        trial.audit_intact = process.cli("audit", "--verify").returncode == 0
        trial.sent_by = _sent_by(probe)
        trial.snapshot = box.snapshot()
        stats = process.stats
        trial.kills, trial.starts = stats.kills, stats.starts
        trial.unexpected_exits, trial.lock_refusals = stats.unexpected_exits, stats.lock_refusals
        trial.cycles = probe.cycles()
        trial.quarantined = probe.quarantined()
        probe.close()
    trial.seconds = round(time.monotonic() - started, 1)
    trial.cpu_sync = round(_cpu(resource.RUSAGE_CHILDREN) - children, 1)
    trial.cpu_driver = round(_cpu(resource.RUSAGE_SELF) - me, 1)
    return trial


def _play_phase(name: str, number: int, phase, people: People, process, probe: StoreProbe,
                kills: dict[int, list[float]], trial: Trial, options: Options) -> None:
    began = time.monotonic()
    _progress(f"[{name}] phase {number + 1}/{len(PHASES)}: {phase.name}")
    phase.act(people)
    mark = utcnow()
    for delay in kills.get(number, []):
        restarted = process.started_at
        wait_until(lambda: probe.started_since(restarted), 30.0, poll=0.05)
        time.sleep(delay)
        process.kill()
        _progress(f"[{name}]   SIGKILL #{process.stats.kills}, {delay:.2f}s into a cycle; restarted")
        mark = utcnow()
    if not wait_until(lambda: probe.quiet_since(mark) and phase.done(people), options.timeout,
                      tick=process.ensure_running):
        trial.phase_timeouts.append(phase.name)
        _progress(f"[{name}]   phase timed out after {options.timeout:.0f}s: {probe.outbox_counts()}")
    trial.phase_seconds.append(round(time.monotonic() - began, 1))


def _webhook_counts(box: Sandbox) -> dict[str, int]:
    sent = [d for sim in box.sims.values() for d in list(sim.webhooks.deliveries)]
    return {"noticed": sum(not d["duplicate"] for d in sent), "dropped": sum(d["dropped"] for d in sent),
            "duplicates": sum(d["duplicate"] for d in sent),
            "accepted": sum(isinstance(d["status"], int) and d["status"] < 300 for d in sent),
            "undelivered": sum(isinstance(d["status"], str) for d in sent)}


def _sent_by(probe: StoreProbe) -> dict[str, int]:
    rows = probe.query("SELECT claimed_by, count(*) FROM outbox WHERE state = 'done' "
                       "GROUP BY claimed_by")
    return {str(who): n for who, n in rows}


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _tune_config(path: Path, options: Options) -> None:
    """Short connector retry budgets (a Retry-After of seconds must not stall a cycle for long)."""
    config = yaml.safe_load(path.read_text())
    for name, section in config["trackers"].items():
        section.update(max_wait_seconds=options.connector_max_wait, timeout_seconds=10)
        if name in ("azure_devops", "jira"):
            section["page_size"] = options.page_size
    config["log_level"] = "WARNING"
    config["daemon"] = {"lease_seconds": options.lease_seconds}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _faults_on(box: Sandbox, options: Options) -> None:
    for number, sim in enumerate(box.sims.values()):
        sim.set_faults(seed=options.seed * 31 + number, error_rate=options.error_rate,
                       rate_429=options.rate_429, retry_after_seconds=options.retry_after,
                       drop_rate=options.drop_rate, drop_after_rate=options.drop_after_rate,
                       latency_ms=options.latency_ms, latency_jitter_ms=options.jitter_ms)


def _faults_off(box: Sandbox) -> None:
    for sim in box.sims.values():
        sim.set_faults(error_rate=0.0, rate_429=0.0, drop_rate=0.0, drop_after_rate=0.0,
                       latency_ms=0.0, latency_jitter_ms=0.0)


def _kill_plan(options: Options) -> dict[int, list[float]]:
    """Which phase each kill falls in, and how long after the people acted (from the seed)."""
    rng = random.Random(f"{options.seed}:kills")
    plan: dict[int, list[float]] = {}
    for _ in range(options.kills):
        plan.setdefault(rng.randrange(len(PHASES)), []).append(rng.uniform(0.0, options.kill_delay))
    return plan


def _settle(box: Sandbox, process: SyncProcess, probe: StoreProbe, trial: Trial, options: Options,
            chaos: bool) -> None:
    """Faults off, dead letters replayed (as an operator would), then wait for a quiet store."""
    trial.requests = {name: len(sim.requests) for name, sim in box.sims.items()}
    faults = Counter(r.fault.split(":")[0] for sim in box.sims.values() for r in sim.requests if r.fault)
    faults["reply_lost"] = sum(r.reply_lost for sim in box.sims.values() for r in sim.requests)
    trial.faults = dict(faults)
    if chaos:
        _faults_off(box)
    result = process.cli("replay", "--all")
    trial.replayed = int((result.stdout.split() or ["0"])[0]) if result.returncode == 0 else -1
    mark = utcnow()
    if not wait_until(lambda: probe.quiet_since(mark), options.timeout, tick=process.ensure_running):
        trial.phase_timeouts.append("final settle")
    counts = probe.outbox_counts()
    trial.pending_at_end, trial.dead_at_end = counts.get("pending", 0), counts.get("dead", 0)


def _measure_loops(box: Sandbox, process: SyncProcess, probe: StoreProbe, trial: Trial,
                   options: Options) -> None:
    """Writes and new outbox actions during ``extra_cycles`` cycles after convergence (want 0)."""
    box.clear_requests()
    mark = utcnow()
    wait_until(lambda: len(probe.runs_since(mark)) >= options.extra_cycles, 60.0,
               tick=process.ensure_running)
    trial.loop_writes = sum(len(sim.write_requests()) for sim in box.sims.values())
    trial.loop_actions = probe.actions_created_since(mark)


@dataclass
class Summary:
    escalations: int
    kills: int
    duplicates: int
    lost_updates: int
    loops: int
    deadletters_unresolved: int
    converged: bool
    missing_back_links: int = 0
    workers: int = 1
    worst_takeover: float | None = None  # seconds, several workers only
    forged_sent: int | None = None  # forged webhooks answered (webhooks on only)
    forged_accepted: int = 0

    def line(self) -> str:
        takeover = "" if self.worst_takeover is None else \
            f"worst_takeover_seconds={self.worst_takeover} "
        forged = "" if self.forged_sent is None else \
            f"forged_webhooks={self.forged_sent} forged_accepted={self.forged_accepted} "
        return (f"workers={self.workers} {takeover}{forged}"
                f"escalations={self.escalations} kills={self.kills} duplicates={self.duplicates} "
                f"lost_updates={self.lost_updates} loops={self.loops} "
                f"deadletters_unresolved={self.deadletters_unresolved} "
                f"converged={'yes' if self.converged else 'no'} "
                f"missing_back_links={self.missing_back_links}")

    @property
    def ok(self) -> bool:
        in_time = self.worst_takeover is None or self.worst_takeover <= 30.0
        return (self.converged and self.duplicates == self.lost_updates == self.loops == 0
                and self.missing_back_links == 0 and in_time and self.forged_accepted == 0)


@contextlib.contextmanager
def chaos_store(options: Options, root: Path) -> Iterator[str | None]:
    """The chaos run's store URL: None for SQLite, a throwaway PostgreSQL (.ci/postgres.sh) for
    ``postgresql``, or the URL given (its tables are dropped first)."""
    if options.store == "sqlite":
        yield None
        return
    script = Path(__file__).resolve().parents[1] / ".ci" / "postgres.sh"
    folder = root / "pg"
    if "://" not in options.store:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        url = subprocess.run(["bash", str(script), "start", str(folder)], check=True,
                             capture_output=True, text=True).stdout.strip()
    else:
        url = options.store
    _empty(url)
    try:
        yield url
    finally:
        if "://" not in options.store:
            subprocess.run(["bash", str(script), "stop", str(folder)], capture_output=True)


def _empty(url: str) -> None:
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def run(options: Options) -> tuple[Summary, dict[str, Any]]:
    """Reference run, chaos run, comparison. Returns the summary and a JSON-able report."""
    root = Path(options.workdir or tempfile.mkdtemp(prefix="tiersync-chaos-"))
    began = time.monotonic()
    try:
        with chaos_store(options, root) as url:
            if options.sequential:
                reference = run_trial("reference", options, root / "reference", chaos=False)
                chaos = run_trial("chaos", options, root / "chaos", chaos=True, store_url=url)
            else:  # the reference run in its own process (own simulators, own CPU), at the same time
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    future = pool.submit(run_trial, "reference", options, root / "reference", chaos=False)
                    chaos = run_trial("chaos", options, root / "chaos", chaos=True, store_url=url)
                    reference = future.result()
        diff = compare(reference.snapshot, chaos.snapshot)
        loops = chaos.loop_writes + chaos.loop_actions
        summary = Summary(options.escalations, chaos.kills, diff.duplicates, diff.lost_updates,
                          loops, chaos.dead_at_end, converged=False,
                          missing_back_links=diff.known_gaps.get("missing_back_links", 0),
                          workers=options.workers, worst_takeover=max(chaos.takeovers, default=None),
                          forged_sent=chaos.forged.get("sent") if chaos.forged else None,
                          forged_accepted=chaos.forged.get("accepted", 0))
        summary.converged = (diff.duplicates == diff.lost_updates == loops == chaos.dead_at_end == 0
                             and chaos.pending_at_end == 0 and not chaos.phase_timeouts)
        report = {"summary": asdict(summary), "details": diff.details[:200],
                  "known_gaps": dict(diff.known_gaps),
                  "reference_self_duplicates": self_duplicates(reference.snapshot),
                  "trials": {t.name: {k: v for k, v in asdict(t).items() if k != "snapshot"}
                             for t in (reference, chaos)}, "workdir": str(root),
                  "wall_seconds": round(time.monotonic() - began, 1)}
        (root / "report.json").write_text(json.dumps(report, indent=2, default=str))
        return summary, report
    finally:
        if not options.keep and options.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__,
                                formatter_class=_HelpFormatter)
    d = Options()
    p.add_argument("--escalations", type=int, default=d.escalations, help="escalations in the scenario")
    p.add_argument("--kills", type=int, default=d.kills, help="SIGKILLs of the sync process during the chaos run")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the scenario, the faults and the kill plan")
    p.add_argument("--interval", type=float, default=d.interval, help="daemon --interval (seconds between cycles)")
    p.add_argument("--error-rate", type=float, default=d.error_rate, help="fraction of requests answered 500/502/503")
    p.add_argument("--rate-429", type=float, default=d.rate_429, help="fraction of requests answered 429 with Retry-After")
    p.add_argument("--retry-after", type=float, default=d.retry_after, help="Retry-After of those 429s (seconds)")
    p.add_argument("--drop-rate", type=float, default=d.drop_rate, help="fraction of connections dropped before processing")
    p.add_argument("--drop-after-rate", type=float, default=d.drop_after_rate,
                   help="fraction of requests processed whose reply is then lost (dropped connection)")
    p.add_argument("--latency-ms", type=float, default=d.latency_ms, help="fixed latency added to every request")
    p.add_argument("--jitter-ms", type=float, default=d.jitter_ms, help="plus a random latency of 0..this")
    p.add_argument("--connector-max-wait", type=float, default=d.connector_max_wait,
                   help="trackers.*.max_wait_seconds: a connector's retry budget for one call")
    p.add_argument("--page-size", type=int, default=d.page_size,
                   help="records per page pulled (Zendesk export page, Azure DevOps and Jira page_size)")
    p.add_argument("--kill-delay", type=float, default=d.kill_delay,
                   help="a kill comes 0..this many seconds after the (restarted) daemon began a cycle")
    p.add_argument("--extra-cycles", type=int, default=d.extra_cycles,
                   help="cycles watched after convergence; any write or new action in them is a loop")
    p.add_argument("--phase-timeout", type=float, default=None,
                   help="seconds to wait for tiersync to catch up with a phase (default 90 + 0.6 x escalations)")
    p.add_argument("--time-scale", type=float, default=d.time_scale,
                   help="vendor time windows of the realistic simulators times this (1: real)")
    p.add_argument("--lenient", action="store_true",
                   help="switch the simulators' realistic vendor behaviours off")
    p.add_argument("--workdir", type=Path, default=None, help="keep the stores, configs, logs and report.json here")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (printed at the end)")
    p.add_argument("--sequential", action="store_true",
                   help="run the reference run before the chaos run instead of at the same time")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="daemons at once in the chaos run, one SIGKILLed every --kill-every seconds "
                        "(several need --store postgresql)")
    p.add_argument("--store", default=d.store,
                   help="chaos run's store: sqlite, postgresql (a throwaway server from "
                        ".ci/postgres.sh) or a PostgreSQL URL (its tables are dropped)")
    p.add_argument("--kill-every", type=float, default=d.kill_every,
                   help="with several workers: seconds between SIGKILLs")
    p.add_argument("--lease-seconds", type=float, default=d.lease_seconds,
                   help="daemon.lease_seconds: a killed daemon's leases and claims pass on after this")
    p.add_argument("--webhooks", action=argparse.BooleanOptionalAction, default=None,
                   help="chaos run: the simulators send webhooks to the daemons (--listen), "
                        "dropped/duplicated, plus forged ones (default: on with several workers)")
    p.add_argument("--webhook-drop-rate", type=float, default=d.webhook_drop_rate,
                   help="fraction of the simulators' webhooks never sent")
    p.add_argument("--webhook-duplicate-rate", type=float, default=d.webhook_duplicate_rate,
                   help="fraction of the simulators' webhooks sent twice")
    p.add_argument("--forge-every", type=float, default=d.forge_every,
                   help="seconds between forged webhooks (bad signature, stale, 10 MB, ...)")
    p.add_argument("--verbose", action="store_true", help="print up to 200 differences found")
    args = p.parse_args(argv)
    options = Options(**{k: v for k, v in vars(args).items() if k != "verbose"})
    if options.workers > 1 and options.store == "sqlite":
        p.error("--workers N needs --store postgresql (SQLite stays one process)")
    options.verbose = args.verbose  # type: ignore[attr-defined]
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    summary, report = run(options)
    for name, trial in report["trials"].items():
        _progress(f"{name}: {trial['seconds']}s, {trial['cycles']} cycles, requests {trial['requests']}, "
                  f"faults {trial['faults']}, phases {trial['phase_seconds']}s, kills {trial['kills']}, "
                  f"replayed {trial['replayed']}, SIGTERM exit {trial['sigterm_exit']}, "
                  f"CPU s: tiersync {trial['cpu_sync']}, simulators {trial['cpu_driver']}")
        _progress(f"{name}: store integrity {trial['integrity']}, audit chain "
                  f"{'intact' if trial['audit_intact'] else 'BROKEN'}, quarantined {trial['quarantined']}")
        if trial["takeovers"]:
            _progress(f"{name}: takeovers after kills (s): {trial['takeovers']}; actions sent per "
                      f"daemon: {sorted(trial['sent_by'].values(), reverse=True)}")
        if trial["forged"]:
            _progress(f"{name}: the simulators' webhooks {trial['webhooks']}; forged "
                      f"{trial['forged']}")
        if trial["phase_timeouts"] or trial["unexpected_exits"]:
            _progress(f"{name}: timeouts {trial['phase_timeouts']}, unexpected exits {trial['unexpected_exits']}")
    for line in report["details"][:200 if getattr(options, "verbose", False) else 20]:
        _progress(f"  {line}")
    if options.keep or options.workdir:
        _progress(f"files: {report['workdir']}")
    chaos = report["trials"]["chaos"]
    print(f"wall={report['wall_seconds']}s "
          f"reference={report['trials']['reference']['seconds']}s chaos={chaos['seconds']}s "
          f"cycles={chaos['cycles']} requests={sum(chaos['requests'].values())} "
          f"faults={sum(chaos['faults'].values())}")
    if report["known_gaps"]:
        print("known connector gaps (not counted above): "
              + " ".join(f"{k}={v}" for k, v in report["known_gaps"].items()))
    print(summary.line())
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
