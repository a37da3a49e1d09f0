"""tiersync's command line: parses arguments, loads the configuration, wires the parts.

No business logic lives here; this is the only place that decides exit codes (EXIT_CODES, shown
by ``tiersync --help``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from core.config_secrets import mask_url
from core.errors import ConfigError, TiersyncError
from core.redact import install_log_redaction, redact_text
from core.terminal import cell, escape_control, nothing_line, write_json

EXIT_CODES = "\n\n".join([
    "Exit codes:",
    "0: clean: nothing needs attention.",
    "1: attention needed, the rest synced: a run exits 1 while quarantined records or dead "
    "letters remain (not only in the run that caused them), and while actions have been "
    "retrying longer than the configured time; a listing command exits 1 when it found a "
    "problem (audit --verify).",
    "2: configuration or connection error: the configuration, a mapping or the policy is "
    "invalid, a secret is missing, or a tracker could not be reached (`tiersync check` prints "
    "every problem at once).",
    "3: another tiersync process holds the store (SQLite: one process per store; "
    "`daemon --standby` waits instead; on PostgreSQL several daemons share the work).",
])
app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Keep support escalations in sync across Zendesk, Jira and Azure DevOps.\n\n"
                  + EXIT_CODES)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
ConfigOption = typer.Option(Path("tiersync.yaml"), "--config", "-c", envvar="TIERSYNC_CONFIG",
                            help="configuration file")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version
        try:
            number = version("tiersync")
        except PackageNotFoundError:  # run from a checkout that was never installed
            number = "unknown (not installed)"
        out.print(f"tiersync {number}", markup=False)
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                            help="print the version and exit")) -> None:
    """Keep support escalations in sync across Zendesk, Jira and Azure DevOps."""


def _say(text: str) -> None:
    """Print a line of text that may hold tracker text: redacted, control characters escaped."""
    out.print(escape_control(redact_text(text)), markup=False)


# -- wiring --------------------------------------------------------------------------------------
def _setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_log_redaction()


class _TextFormatter(logging.Formatter):
    """Log lines with tracker text: control characters escaped (line breaks of tracebacks kept)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_control(super().format(record), keep_newlines=True)


def _JsonFormatter() -> logging.Formatter:
    from core.logfields import JsonFormatter
    return JsonFormatter(redact_text)


def _fail(problems: list[str], code: int = EXIT_CONFIG) -> None:
    for problem in problems:
        err.print(f"error: {escape_control(redact_text(problem))}", markup=False)
    raise typer.Exit(code)


def _load(config_path: Path):
    from wiring import load_config
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _fail(exc.problems)
    _setup_logging(config.settings.log_level, config.settings.log_format)
    return config


def _store(config, dry_run: bool = False):
    from core.store import Store
    try:
        store = Store(config.settings.store, dry_run=dry_run)
    except ConfigError as exc:  # an unusable URL or a missing driver
        _fail(exc.problems)
    try:
        store.migrate()
    except Exception as exc:  # unreachable database, bad permissions
        _fail([f"store {mask_url(config.settings.store)}: {exc}"])
    return store


def _connectors(config, names=None) -> dict:
    from wiring import build_connectors
    try:
        return build_connectors(config, names)
    except TiersyncError as exc:
        _fail([str(exc)])


def _engine(config, store, connectors):
    from core.engine import EngineSettings, SyncEngine
    settings = EngineSettings(**config.settings.engine.model_dump())
    engine = SyncEngine(store, connectors, config.mappings, config.policy, settings=settings)
    _audit_writable(store, engine.audit)
    return engine


# -- commands ------------------------------------------------------------------------------------
@app.command()
def check(config: Path = ConfigOption,
          online: bool = typer.Option(False, help="also connect to each tracker and verify fields")) -> None:
    """Validate the configuration, mappings and policy; print every problem (exit 2 on error)."""
    from core.config import missing_secrets
    from wiring import load_config
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _fail(exc.problems)
    missing = missing_secrets(cfg)
    problems = (missing + _online_problems(cfg, skip=_trackers_named(missing))) if online else []
    if problems:
        _fail(problems)
    for warning in missing:
        err.print(f"warning: {warning} (needed to run)", markup=False)
    for warning in cfg.policy.warnings():
        err.print(f"warning: {warning}", markup=False)
    out.print(f"ok: {config}: {len(cfg.trackers)} trackers "
              f"({', '.join(f'{n}={t.kind}' for n, t in cfg.trackers.items())}), "
              f"{sum(len(m.fields) for m in cfg.mappings.values())} mapped fields, "
              f"store {mask_url(cfg.settings.store)}", markup=False)


def _trackers_named(problems: list[str]) -> set[str]:
    return {p.split(".")[1].split(":")[0] for p in problems if p.startswith("trackers.")}


def _online_problems(cfg, skip: set[str] = frozenset()) -> list[str]:
    """Each tracker whose secrets are set is checked online; every problem is collected."""
    problems: list[str] = []
    for name, connector in _connectors(cfg).items():
        if name in skip:
            continue
        mapping = cfg.mappings[name]
        paths = sorted({f.path for f in mapping.fields.values()} | set(mapping.create_defaults))
        values = {f.path: sorted(map(str, (f.values or {}).keys())) for f in mapping.fields.values()
                  if f.values}
        try:
            connector.use_mapping(mapping)
            problems.extend(f"{mapping.source}: {p}" for p in connector.check_online(paths, values))
        except TiersyncError as exc:
            problems.append(f"trackers.{name}: {exc}")
        finally:
            connector.close()
    return problems


RUN_EXIT_CODES = ("Exit codes: 0 clean; 1 records quarantined, actions dead-lettered, or actions "
                  "retrying longer than engine.retry_alert_seconds, whichever run caused them (the "
                  "code stays 1 run after run until they are resolved); 2 configuration, "
                  "credential or connection error; 3 another tiersync process holds the store.")


@app.command(epilog=RUN_EXIT_CODES)
def run(config: Path = ConfigOption,
        once: bool = typer.Option(True, "--once", help="run one cycle and exit (the default; "
                                  "`tiersync daemon` repeats cycles)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="read and plan, write nothing"),
        as_json: bool = typer.Option(False, "--json", help="print the report (and with --dry-run "
                                     "every planned action with its full payload) as JSON")) -> None:
    """Run one sync cycle: pull, reconcile, decide, push."""
    cfg = _load(config)
    store = _store(cfg, dry_run=dry_run)
    with _single_instance(cfg):
        from core.logfields import run_context
        engine = _engine(cfg, store, _connectors(cfg))
        with _sharing(cfg, engine, None, dry_run), run_context(_new_run_id()) as run_id, \
                _progress("sync", cfg) as on_page:
            engine.on_page = on_page
            report = engine.run_cycle(dry_run=dry_run, run_id=run_id)
    store.close()
    if as_json:
        write_json(dict(report.as_dict(), planned=_planned(report)), sys.stdout)
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)


def _planned(report) -> list[dict]:
    return [{k: action.get(k) for k in ("id", "kind", "connector", "remote_id", "escalation_id",
                                          "rule", "payload")} for action in report.planned]


@app.command()
def daemon(config: Path = ConfigOption,
           interval: Optional[float] = typer.Option(None, "--interval", help="seconds between cycles"),
           listen: Optional[str] = typer.Option(None, "--listen", envvar="TIERSYNC_LISTEN",
                                                help="HOST:PORT to serve /board, /metrics, "
                                                "/healthz, /readyz and /webhooks/<tracker> on"),
           standby: bool = typer.Option(False, "--standby", help="SQLite: wait while another "
                                        "daemon holds the store, then take over (instead of "
                                        "exiting 3); PostgreSQL daemons all share the work")) -> None:
    """Repeat sync cycles until SIGTERM/SIGINT; the current page is finished cleanly."""
    cfg = _load(config)
    every = interval or cfg.settings.daemon.interval_seconds
    stop, wake = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (stop.set(), wake.set()))
    store = _store(cfg)
    log = logging.getLogger("tiersync.daemon")
    with _single_instance(cfg, standby=standby, stop=stop):
        if stop.is_set():
            log.info("stopping: signal received while standing by")
            return
        from core.daemon_loop import DaemonLoop
        engine = _engine(cfg, store, _connectors(cfg))
        realtime = _realtime(cfg, engine, every) if listen else None
        log.info("daemon started, a cycle every %.0fs", every)
        with _sharing(cfg, engine, wake), \
                _listening(listen, cfg, store, realtime.install if realtime else None):
            DaemonLoop(engine, every, stop, hints=realtime and realtime.hints,
                       metrics=realtime and realtime.metrics,
                       health=realtime and realtime.health, wake=wake,
                       drift_due=_every(cfg.settings.daemon.drift_check_seconds),
                       first_cycle_progress=lambda: _progress_report("first cycle", cfg)).run()
        log.info("stopping: signal received, current page finished")
    store.close()


def _realtime(cfg, engine, every: float):
    """Metrics, health and the webhook endpoints of the trackers that have a webhook section."""
    from connectors.webhooks import endpoint_for
    from wiring import realtime
    try:
        endpoints = {name: endpoint_for(name, tracker) for name, tracker in cfg.trackers.items()}
    except ConfigError as exc:
        _fail(exc.problems)
    return realtime(engine, cfg.policy, every,
                    {name: e for name, e in endpoints.items() if e is not None})


def _new_run_id() -> str:
    import uuid
    return "run-" + uuid.uuid4().hex[:12]


@contextlib.contextmanager
def _single_instance(cfg, standby: bool = False, stop: Optional[threading.Event] = None):
    """SQLite: this process alone (exit 3, or as a standby wait); PostgreSQL: nothing to hold."""
    from core.lock import StoreLock, StoreLocked, shares_work
    if shares_work(cfg.settings.store):
        yield
        return
    lock = StoreLock.for_url(cfg.settings.store)
    if standby:
        logging.getLogger("tiersync.daemon").info("standing by until the store is free")
        with lock.standby(stop.is_set if stop else (lambda: False)):
            yield
        return
    held = lock.held()
    try:
        held.__enter__()
    except StoreLocked as exc:
        _fail([str(exc)], EXIT_LOCKED)
    try:
        yield
    finally:
        held.__exit__(None, None, None)


@contextlib.contextmanager
def _sharing(cfg, engine, wake: Optional[threading.Event], dry_run: bool = False):
    """PostgreSQL: this process as one worker among several (leases, heartbeat)."""
    from core.lock import shares_work
    from core.worker import Worker
    if dry_run or not shares_work(cfg.settings.store):
        yield
        return
    from core.config_agreement import engine_rules
    worker = Worker(engine.store, list(engine.connectors),
                    lease_seconds=cfg.settings.daemon.lease_seconds, wake=wake,
                    config=engine_rules(engine))
    worker.start()
    engine.worker, engine.worker_id = worker, worker.id
    try:
        yield
    finally:
        worker.stop()


def _print_report(report) -> None:
    data = report.as_dict()
    errors = data.pop("connector_errors")
    out.print(" ".join(f"{k}={v}" for k, v in data.items() if k not in ("stopped_early",)), markup=False)
    for error in errors:
        err.print(f"error: {escape_control(redact_text(error))}", markup=False)
    if report.dry_run and not report.planned:
        out.print(nothing_line("no action would be sent"), markup=False)
    elif report.dry_run:
        out.print(f"dry run: {len(report.planned)} actions would be sent (full payloads: --json):")
        for action in report.planned:
            _say(f"  {action['kind']:7} {action['connector']:14} {action['remote_id'] or '(new)':10} "
                 f"{json.dumps(action['payload'], default=str)[:160]}")


@app.command()
def quarantine(config: Path = ConfigOption,
               as_json: bool = typer.Option(False, "--json"),
               retry: Optional[str] = typer.Option(None, "--retry", metavar="ID|all",
                                                   help="re-read this entry's record (or every "
                                                   "entry's: all) and run it through today's "
                                                   "mapping and policy"),
               all_: bool = typer.Option(False, "--all", help="retry every open entry")) -> None:
    """Records that failed to map, with the reason; --retry ID / --all retries them.

    Entries clear themselves when the record later syncs; --retry ID (or --all) re-reads the
    record from its tracker and runs it through today's mapping and policy. A run exits 1
    while any entry is open."""
    if retry is not None or all_:
        every = all_ or retry in ("all", "--all")
        if not every and not (retry or "").isdigit():
            _fail([f"quarantine: --retry takes an entry id (see `tiersync quarantine`) or 'all', "
                   f"not {retry!r}"])
        _quarantine_retry(config, None if every else int(retry), as_json)
        return
    cfg = _load(config)
    store = _store(cfg)
    with store.transaction() as tx:
        rows = store.quarantined(tx)
    if as_json:
        write_json([dict(r, created_at=r["created_at"].isoformat()) for r in rows], sys.stdout)
        return
    if not rows:
        out.print(nothing_line("no record is quarantined"), markup=False)
        return
    table = Table("id", "record", "version", "reason", "since")
    for r in rows:
        table.add_row(str(r["id"]), cell(f"{r['connector']}:{r['remote_id']}"),
                      cell(r["remote_version"] or ""), cell(redact_text(r["reason"])),
                      r["created_at"].strftime("%Y-%m-%d %H:%M"))
    out.print(table)


def _quarantine_retry(config: Path, entry_id: Optional[int], as_json: bool) -> None:
    from core.quarantine import retry
    cfg, store, engine = _admin_engine(config)
    with _single_instance(cfg):
        report = _admin_report(engine, "quarantine-retry")
        outcomes = retry(engine, entry_id, report)
    code = EXIT_PARTIAL if not outcomes and entry_id is not None or any(not o.cleared for o in outcomes) \
        else EXIT_OK
    _admin_finish(engine, report, code)
    if as_json:
        out.print(json.dumps([o.__dict__ for o in outcomes], indent=2), markup=False)
    elif not outcomes:
        out.print("nothing to retry: " + (f"no open quarantine entry with id {entry_id}"
                                          if entry_id is not None else "the quarantine is empty"))
    for o in outcomes if not as_json else []:
        out.print(f"{o.record}: " + ("cleared (it syncs now; the next run sends what it queued)"
                                     if o.cleared else f"still quarantined: {redact_text(o.reason or '')}"),
                  markup=False)
    raise typer.Exit(code)


@app.command()
def status(config: Path = ConfigOption, as_json: bool = typer.Option(False, "--json"),
           all_: bool = typer.Option(False, "--all", help="closed and rejected escalations too"),
           not_converted: bool = typer.Option(False, "--not-converted",
                                              help="records of unregistered senders, left alone"),
           abuse: bool = typer.Option(False, "--abuse", help="priority-abuse counters")) -> None:
    """Open escalations in queue order: links, state, rank, SLA and review due times, abuse flags."""
    from core.policy.report import abuse_report, not_converted_rows, status_rows
    cfg = _load(config)
    store = _store(cfg)
    everything = not_converted or abuse or all_
    escalations = [item.escalation for batch in store.iter_escalations(open_only=not everything)
                   for item in batch]
    if not_converted or abuse:
        data = not_converted_rows(escalations) if not_converted else abuse_report(escalations, cfg.policy)
        _print_extra(data, as_json, not_converted)
        return
    rows = status_rows(escalations, cfg.policy, datetime.now(timezone.utc))
    if as_json:
        write_json(rows, sys.stdout)
        return
    if not rows:
        out.print(nothing_line("no open escalation" + ("" if all_ else " (--all: closed ones too)")),
                  markup=False)
        return
    table = Table("escalation", "links", "state", "rank", "tier", "queue", "acknowledgement",
                  "first solution", "close", "review", "abuse")
    for row in rows:
        table.add_row(cell(row["id"], row["sr_number"] or ""), cell(*row["links"]),
                      cell(row["state"]), str(row["queue_rank"] or "-"), cell(row["tier"]),
                      cell(row["queue"] or ""),
                      *(_sla_cell(row["sla"].get(m)) for m in ("acknowledgement", "first_solution", "close")),
                      _review_cell(row["review"]), cell(row["priority_abuse"] or ""))
    out.print(table)
    counters = abuse_report(escalations, cfg.policy)
    if counters["requesters"]:
        out.print(escape_control("priority abuse flags: " + ", ".join(
            f"{k}: {v}" for k, v in counters["requesters"].items())), markup=False)


def _print_extra(data, as_json: bool, not_converted: bool) -> None:
    if as_json:
        write_json(data, sys.stdout)
        return
    if not_converted:
        table = Table("record", "requester", "seen", "reason")
        for row in data:
            table.add_row(cell(row["record"] or ""), cell(row["requester"] or ""),
                          row["seen_at"].strftime("%Y-%m-%d %H:%M"), cell(row["reason"]))
        out.print(table)
        return
    table = Table("by", "who", "flagged cases / urgent share")
    for kind in ("requesters", "partners"):
        for who, count in data[kind].items():
            table.add_row(kind[:-1], cell(who), str(count))
    for who, share in data["share"].items():
        table.add_row("urgent share", cell(who), f"{share:.0%}")
    out.print(table)


def _review_cell(review: dict) -> str:
    if not review.get("status"):
        return "-"
    due = review["due_at"]
    due_text = due.strftime("%Y-%m-%d %H:%M") if hasattr(due, "strftime") else (due or "-")
    return cell(f"L{review['level']} {review['status']}", due_text)


def _sla_cell(metric: Optional[dict]) -> str:
    if not metric:
        return "-"
    due = metric.get("due_at")
    due_text = due.strftime("%Y-%m-%d %H:%M") if hasattr(due, "strftime") else (due or "-")
    remaining = metric.get("remaining_seconds")
    left = [] if remaining is None else [f"{remaining / 3600:+.1f} h left"]
    return cell(metric["status"], due_text, *left)  # one line each (cell escapes a "\n")


@app.command()
def explain(record: str = typer.Argument(..., help="TRACKER:ID, e.g. zendesk:123 or jira:ENG-7"),
            config: Path = ConfigOption,
            as_json: bool = typer.Option(False, "--json", help="the lines as a JSON list")) -> None:
    """How one record maps and which validation, routing, SLA and escalation rules fire (writes nothing)."""
    from core.engine import _owners
    from core.inspect import explain_record
    tracker, _, remote_id = record.partition(":")
    cfg = _load(config)
    if tracker not in cfg.trackers or not remote_id:
        _fail([f"explain: give TRACKER:ID with one of {', '.join(cfg.trackers)} (got {record!r})"])
    store = _store(cfg)
    from core.redact_records import redacting
    connector = redacting(_connectors(cfg, [tracker]), cfg.mappings)[tracker]
    try:
        lines = explain_record(store, connector, cfg.mappings[tracker], cfg.policy,
                               _owners(cfg.mappings), remote_id, datetime.now(timezone.utc))
    except TiersyncError as exc:
        _fail([str(exc)])
    if as_json:
        write_json([redact_text(line) for line in lines], sys.stdout)
        return
    for line in lines:
        _say(line)


@app.command()
def deadletters(config: Path = ConfigOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Actions that kept failing and were set aside; replay them with `tiersync replay`."""
    cfg = _load(config)
    store = _store(cfg)
    with store.transaction() as tx:
        rows = store.actions(tx, state="dead")
    if as_json:
        write_json([dict(r.__dict__, next_attempt_at=r.next_attempt_at.isoformat())
                    for r in rows], sys.stdout)
        return
    if not rows:
        out.print(nothing_line("no dead-lettered action"), markup=False)
        return
    table = Table("id", "escalation", "action", "target", "attempts", "last error")
    for r in rows:
        table.add_row(str(r.id), r.escalation_id, r.kind, cell(f"{r.connector}:{r.remote_id or '(new)'}"),
                      str(r.attempts), cell(redact_text(r.last_error or "")[:100]))
    out.print(table)


@app.command()
def replay(action_id: Optional[int] = typer.Argument(None, help="dead-lettered action id"),
           all_: bool = typer.Option(False, "--all", help="replay every dead-lettered action"),
           config: Path = ConfigOption) -> None:
    """Queue dead-lettered actions again; the next cycle sends them, re-planned from today's state."""
    if action_id is None and not all_:
        _fail(["replay: give an action id or --all"])
    cfg = _load(config)
    store = _store(cfg)
    with store.transaction() as tx:
        count = store.replay(tx, None if all_ else [action_id], datetime.now(timezone.utc))
    if count == 0 and not all_:
        _fail([f"replay: no dead-lettered action with id {action_id}"], EXIT_PARTIAL)
    out.print(f"{count} action(s) queued again")


@app.command()
def demo(store: Optional[Path] = typer.Option(None, "--store", help="SQLite file for the demo's store"),
         workdir: Optional[Path] = typer.Option(None, "--workdir", help="folder for the demo's files")) -> None:
    """Play the seeds' escalation through the three built-in tracker simulators."""
    import tempfile
    from harness.demo import run_demo
    _setup_logging("WARNING")
    folder = workdir or Path(tempfile.mkdtemp(prefix="tiersync-demo-"))
    url = f"sqlite:///{store.resolve()}" if store else None
    raise typer.Exit(run_demo(folder, out, store_url=url))


@app.command()
def simulate(workdir: Optional[Path] = typer.Option(None, "--workdir", help="folder for the generated config"),
             lenient: bool = typer.Option(False, "--lenient", help="switch the vendors' realistic "
                                          "behaviours off (README: what the simulators reproduce)"),
             time_scale: float = typer.Option(1.0, "--time-scale", min=0.0001, max=1.0,
                                              help="vendor time windows (export hold-back, rate "
                                                   "windows, index lag) times this")) -> None:
    """Start the three tracker simulators alone and print how to point tiersync at them."""
    import tempfile
    from simulators.profile import Profile
    from harness.sandbox import Sandbox
    _setup_logging("WARNING")
    folder = workdir or Path(tempfile.mkdtemp(prefix="tiersync-sim-"))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Sandbox(folder, profile=Profile(realistic=not lenient, time_scale=time_scale)) as box:
        for name, sim in box.sims.items():
            out.print(f"{name:13} {sim.base_url}", markup=False)
        out.print(f"\nconfiguration: {box.config_path}", markup=False)
        env_file = folder / "simulators.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(box.env.items())))
        env_file.chmod(0o600)
        out.print(f"credentials for the simulators: {env_file} ({', '.join(sorted(box.env))})",
                  markup=False)
        out.print(f"\ntry: set -a; . {env_file}; set +a; tiersync run --once --config {box.config_path}",
                  markup=False)
        out.print(f"profile: {'lenient' if lenient else 'realistic'}, time scale {time_scale:g} "
                  "(GET/POST /_sim/profile)", markup=False)
        out.print("fault injection: POST /_sim/faults on any simulator; Ctrl-C stops", markup=False)
        stop.wait()


# --- admin commands (issue 10: reconcile, rebuild, link, backfill) ---
EXIT_CODES_HELP = ("Exit codes: 0 clean; 1 records quarantined, actions dead-lettered or retrying "
                   "longer than engine.retry_alert_seconds (whichever run caused them), or "
                   "differences found; 2 configuration, credential or connection error; "
                   "3 another tiersync process holds the store.")


def _admin_engine(config: Path):
    cfg = _load(config)
    store = _store(cfg)
    return cfg, store, _engine(cfg, store, _connectors(cfg))


def _admin_report(engine, mode: str):
    from core.engine import CycleReport
    import uuid
    report = CycleReport(run_id=f"{mode}-" + uuid.uuid4().hex[:12])
    engine.planner.run_id = report.run_id
    with engine.store.transaction() as tx:
        engine.store.start_run(tx, report.run_id, mode, datetime.now(timezone.utc))
    return report


def _admin_finish(engine, report, code: int) -> None:
    with engine.store.transaction() as tx:
        engine.store.finish_run(tx, report.run_id, "ok" if code == 0 else "partial",
                                report.as_dict(), datetime.now(timezone.utc))
    for connector in engine.connectors.values():
        connector.close()
    engine.store.close()


def _aware(value: Optional[datetime]) -> Optional[datetime]:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


@app.command(epilog=EXIT_CODES_HELP)
def reconcile(config: Path = ConfigOption,
              fix: bool = typer.Option(False, "--fix", help="repair every difference (writes to the trackers)"),
              tracker: Optional[str] = typer.Option(None, "--tracker", help="only this tracker's records"),
              as_json: bool = typer.Option(False, "--json", help="JSON output")) -> None:
    """Compare every open escalation's records with the model; --fix repairs every difference.

    Each linked record is read from its tracker. Kinds: drift (tiersync's view of the record is
    stale: repaired with today's values), changed (changed in the tracker since the last pull:
    merged). Exit 1 while differences remain."""
    from core.drift_check import reconcile as run_reconcile
    cfg, store, engine = _admin_engine(config)
    if tracker is not None and tracker not in cfg.trackers:
        _fail([f"reconcile: --tracker {tracker!r} is not configured (one of {', '.join(cfg.trackers)})"])
    with _single_instance(cfg):
        report = _admin_report(engine, "reconcile")
        result = run_reconcile(engine, report, tracker=tracker, fix=fix)
    left = (result.remaining if fix else result.differences) or result.missing
    code = EXIT_CONFIG if result.unreadable or report.connector_errors else (EXIT_PARTIAL if left else EXIT_OK)
    _admin_finish(engine, report, code)
    _print_reconcile(result, fix, as_json)
    raise typer.Exit(code)


def _print_reconcile(result, fix: bool, as_json: bool) -> None:
    rows = [dict(d.__dict__) for d in result.differences]
    if as_json:
        out.print(json.dumps({"checked": result.checked, "differences": rows,
                              "remaining": [dict(d.__dict__) for d in result.remaining],
                              "missing": result.missing, "unreadable": result.unreadable,
                              "fixed": result.fixed},
                             default=str, indent=2), markup=False)
        return
    if not rows:
        out.print(f"no differences: {result.checked} linked record(s) match their escalations")
    else:
        table = Table("record", "escalation", "field", "in the tracker", "escalation wants", "kind")
        for d in result.differences:
            table.add_row(f"{d.tracker}:{d.remote_id}", d.escalation_id, d.path,
                          redact_text(str(d.record_value))[:60], redact_text(str(d.wanted))[:60], d.kind)
        out.print(table)
        out.print(f"{len(rows)} difference(s) in {result.checked} record(s) checked"
                  + (f"; {len(result.remaining)} remain after --fix" if fix else "; --fix repairs them"))
    for record in result.missing:
        err.print(f"warning: {record} is linked but no longer in its tracker (deleted?)", markup=False)
    for problem in result.unreadable:
        err.print(f"error: {redact_text(problem)}", markup=False)


@app.command(epilog=EXIT_CODES_HELP)
def rebuild(config: Path = ConfigOption,
            since: Optional[datetime] = typer.Option(None, "--since", help="read records changed since "
                                                     "this ISO time (default: each tracker's whole history)"),
            as_json: bool = typer.Option(False, "--json", help="JSON summary")) -> None:
    """Reconstruct escalations and links from the trackers (after a lost store); writes nothing.

    Reads each tracker's records, follows tiersync's markers on them (Zendesk external_id, Jira
    property/label, Azure DevOps tag or marker field) and merges their current values. What the
    rebuilt state needs is queued for the next run, which sends only what differs."""
    from core.rebuild import rebuild as run_rebuild
    cfg, store, engine = _admin_engine(config)
    with _single_instance(cfg), _progress("rebuild", cfg) as on_page:
        report = _admin_report(engine, "rebuild")
        result = run_rebuild(engine, report, since=_aware(since), on_page=on_page)
    code = EXIT_PARTIAL if report.quarantined or result.orphans else EXIT_OK
    _admin_finish(engine, report, code)
    summary = {"escalations": result.escalations, "links": result.links, "orphans": result.orphans,
               "queued_for_next_run": result.queued, "quarantined": report.quarantined,
               "read": {s.tracker: s.records for s in result.scans}}
    if as_json:
        out.print(json.dumps(summary, indent=2), markup=False)
    else:
        out.print(f"rebuilt: {result.escalations} escalation(s), {result.links} link(s) from "
                  + ", ".join(f"{s.tracker} {s.records} record(s)" for s in result.scans), markup=False)
        out.print("queued for the next run (only what differs is sent): "
                  + (", ".join(f"{n} {k}" for k, n in sorted(result.queued.items())) or "nothing"),
                  markup=False)
        for orphan in result.orphans:
            err.print(f"warning: orphan mirror {orphan}: its origin was not found; "
                      "connect it with `tiersync link`", markup=False)
    raise typer.Exit(code)


@app.command(epilog=EXIT_CODES_HELP)
def link(first: str = typer.Argument(..., help="TRACKER:ID of the origin, e.g. zendesk:123"),
         second: str = typer.Argument(..., help="TRACKER:ID of the record escalated by hand, e.g. azure_devops:456"),
         config: Path = ConfigOption) -> None:
    """Connect two records escalated by hand before tiersync (e.g. zendesk:123 azure_devops:456).

    Both must exist; conflicting links are refused with the reason. The next run writes the
    escalation's values where they differ."""
    from core.linking import LinkRefused, link_records, parse_ref
    cfg, store, engine = _admin_engine(config)
    with _single_instance(cfg):
        report = _admin_report(engine, "link")
        try:
            outcome = link_records(engine, parse_ref(first, cfg.trackers),
                                   parse_ref(second, cfg.trackers), report)
        except LinkRefused as exc:
            _admin_finish(engine, report, EXIT_PARTIAL)
            _fail([f"link: {exc}"], EXIT_PARTIAL)
    _admin_finish(engine, report, EXIT_OK)
    if outcome.joined is None:
        out.print(f"already linked: both records belong to escalation {outcome.escalation_id}")
    else:
        verb = "opened escalation" if outcome.opened else "joined escalation"
        out.print(f"linked: {outcome.joined} {verb} {outcome.escalation_id}; "
                  "the next run writes its values where they differ", markup=False)


@app.command(epilog=EXIT_CODES_HELP)
def backfill(since: datetime = typer.Option(..., "--since", help="ISO date or time (UTC if no zone)"),
             tracker: Optional[str] = typer.Option(None, "--tracker", help="only this tracker"),
             config: Path = ConfigOption,
             as_json: bool = typer.Option(False, "--json", help="JSON summary")) -> None:
    """Bring in the records changed since a date (history from before tiersync); resumable.

    An interrupted backfill continues where it stopped (its cursor is in the store). The next
    run sends what it queued."""
    from core.backfill import backfill as run_backfill
    cfg, store, engine = _admin_engine(config)
    if tracker is not None and tracker not in cfg.trackers:
        _fail([f"backfill: --tracker {tracker!r} is not configured (one of {', '.join(cfg.trackers)})"])
    with _single_instance(cfg), _progress("backfill", cfg) as on_page:
        report = _admin_report(engine, "backfill")
        try:
            result = run_backfill(engine, _aware(since), [tracker] if tracker else list(cfg.trackers),
                                  report, on_page=on_page)
        except TiersyncError as exc:
            _admin_finish(engine, report, EXIT_CONFIG)
            _fail([f"backfill: {exc} (run it again to resume)"])
    code = EXIT_PARTIAL if report.quarantined else EXIT_OK
    _admin_finish(engine, report, code)
    rows = [dict(s.__dict__) for s in result.trackers]
    totals = {"opened": report.opened, "changed": report.changed, "ignored": report.ignored,
              "quarantined": report.quarantined}
    if as_json:
        out.print(json.dumps({"since": result.since.isoformat(), "trackers": rows, **totals}, indent=2),
                  markup=False)
    else:
        for s in result.trackers:
            out.print(f"{s.tracker}: {s.records} record(s) in {s.pages} page(s)"
                      + (" (resumed)" if s.resumed else ""), markup=False)
        out.print(" ".join(f"{k}={v}" for k, v in totals.items()) + "; the next run sends what was queued",
                  markup=False)
    raise typer.Exit(code)


def _progress_report(what: str, cfg):
    """Progress per tracker: a rich display on a terminal, log lines elsewhere."""
    from core.progress import ProgressReport
    return ProgressReport(what, console=err, every_seconds=cfg.settings.progress_seconds)


@contextlib.contextmanager
def _progress(what: str, cfg):
    """The ``on_page(tracker, records)`` callback of a progress report (core/progress.py)."""
    with _progress_report(what, cfg) as report:
        yield report.page


def _every(seconds: float):
    """A function telling, each time it is asked, whether ``seconds`` have passed since it
    last said yes (the first time: yes); 0 means never."""
    last: list[datetime] = []

    def due() -> bool:
        now = datetime.now(timezone.utc)
        if not seconds or (last and (now - last[0]).total_seconds() < seconds):
            return False
        last[:] = [now]
        return True
    return due


# --- audit, trace, report and board commands ---
audit_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                        help="Show, export or verify the audit log; checkpoints and pruning.")
app.add_typer(audit_app, name="audit")


def _utc(value: Optional[datetime]) -> Optional[datetime]:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


@audit_app.callback()
def audit(ctx: typer.Context, config: Path = ConfigOption,
          escalation: Optional[str] = typer.Option(None, "--escalation", help="escalation id"),
          tracker: Optional[str] = typer.Option(None, "--tracker", help="tracker (connector) name"),
          remote_id: Optional[str] = typer.Option(None, "--id", help="record id in that tracker"),
          run_id: Optional[str] = typer.Option(None, "--run", help="run id"),
          action: Optional[str] = typer.Option(None, "--action", help="e.g. written, merged, updated"),
          since: Optional[datetime] = typer.Option(None, "--since", help="ISO time, UTC if no zone"),
          until: Optional[datetime] = typer.Option(None, "--until", help="ISO time (exclusive)"),
          limit: int = typer.Option(200, "--limit", help="table: newest N entries (0: all)"),
          fmt: str = typer.Option("table", "--format", help="table | jsonl | csv"),
          as_json: bool = typer.Option(False, "--json", help="JSON Lines (same as --format jsonl)"),
          verify: bool = typer.Option(False, "--verify", help="check the hash chain and its head"),
          expect_head: Optional[str] = typer.Option(None, "--expect-head", help="COUNT:HASH the log must contain"),
          checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="checkpoint file to verify against")) -> None:
    """Show (or verify) the audit log: every decision, by which run, on which record."""
    if ctx.invoked_subcommand:
        return
    cfg = _load(config)
    store = _store(cfg)
    if verify:
        _audit_verify(store, expect_head, checkpoint)
        return
    fmt = "jsonl" if as_json else fmt
    if fmt not in ("table", "jsonl", "csv"):
        _fail([f"audit --format {fmt!r}: use table, jsonl or csv"])
    from core.audit import AuditLog, write_jsonl
    from core.audit_export import write_csv
    filters = dict(escalation_id=escalation, tracker=tracker, remote_id=remote_id, run_id=run_id,
                   action=action, since=_utc(since), until=_utc(until))
    with store.transaction() as tx:
        if fmt != "table":
            rows = AuditLog(key=None).query(tx, **filters)
            (write_jsonl if fmt == "jsonl" else write_csv)(rows, sys.stdout)
            return
        if limit:
            rows = list(AuditLog(key=None).query(tx, limit=limit, newest_first=True, **filters))[::-1]
        else:
            rows = AuditLog(key=None).query(tx, **filters)
        _audit_table(rows, limit)


def _audit_table(rows, limit: int) -> None:
    from core.audit_export import table_header, table_line
    count = 0
    for row in rows:
        if count == 0:
            print(table_header())
        print(escape_control(redact_text(table_line(row))))  # tracker text: no escape sequences
        count += 1
    if count == 0:
        print(nothing_line("no audit entry matches"))
    if limit and count == limit:
        print(f"(the newest {limit} entries; --limit 0 for all, --format csv|jsonl to export)")


def _audit_verify(store, expect_head: Optional[str], checkpoint: Optional[Path]) -> None:
    from core.audit import audit_key
    from core.audit_chain import CheckpointError, load_checkpoint, parse_expect_head, verify_chain
    key = audit_key()
    expectations, problems = [], []
    try:
        if expect_head:
            expectations.append(parse_expect_head(expect_head))
        if checkpoint:
            expected, bad = load_checkpoint(_read_file(checkpoint), str(checkpoint), key)
            expectations.append(expected)
            problems += bad
    except CheckpointError as exc:
        _fail([str(exc)])
    with store.transaction() as tx:
        result = verify_chain(tx, key, expectations)
    head = result.head
    keyed = f"keyed from entry {head.keyed_from}" if head.keyed_from else "unkeyed (SHA-256)"
    out.print(f"head {head.text()}  entries {result.walked} (appended {head.count}, pruned "
              f"{head.pruned_count})  {keyed}", markup=False)
    for note in result.notes:
        out.print(f"note: {note}", markup=False)
    if problems + result.problems:
        _fail(problems + result.problems, EXIT_PARTIAL)
    out.print("audit log intact")


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        _fail([f"{path}: {exc.strerror}"])


def _audit_writable(store, log) -> None:
    """Stop before syncing when the audit chain is keyed and this process has no key."""
    from core.audit import AuditKeyMissing
    with store.transaction() as tx:
        try:
            log.check_writable(tx)
        except AuditKeyMissing as exc:
            _fail([str(exc)])


@audit_app.command("checkpoint")
def audit_checkpoint(out_file: Path = typer.Option(..., "--out", help="file to write"),
                     config: Path = ConfigOption) -> None:
    """Write a signed checkpoint (count, head, time) for auditors to keep outside the store."""
    from core.audit import audit_key
    from core.audit_chain import checkpoint_json, make_checkpoint, read_head
    cfg = _load(config)
    store = _store(cfg)
    key = audit_key()
    with store.transaction() as tx:
        cp = make_checkpoint(read_head(tx), key, datetime.now(timezone.utc))
    out_file.write_text(checkpoint_json(cp), encoding="utf-8")
    signed = "signed with TIERSYNC_AUDIT_KEY" if key else "NOT signed (no TIERSYNC_AUDIT_KEY)"
    out.print(f"checkpoint {cp['count']}:{cp['head']} written to {out_file} ({signed})", markup=False)


@audit_app.command("prune")
def audit_prune(before: datetime = typer.Option(..., "--before", help="remove entries older than this (UTC if no zone)"),
                checkpoint_out: Path = typer.Option(..., "--checkpoint-out", help="checkpoint of the prune point"),
                export: Optional[Path] = typer.Option(None, "--export", help="JSON Lines of the removed entries"),
                config: Path = ConfigOption) -> None:
    """Remove old audit entries; the rest stays verifiable from the checkpoint written here."""
    import uuid
    from core.audit import AuditLog, write_jsonl
    from core.audit_chain import checkpoint_json, prune_bound, prune_checkpoint, prune_through
    cfg = _load(config)
    store = _store(cfg)
    log, now, before = AuditLog(), datetime.now(timezone.utc), _utc(before)
    with store.transaction() as tx:
        through = prune_bound(tx, before)
        if through is None:
            out.print("nothing to prune")
            return
        if export:
            with export.open("w", encoding="utf-8") as handle:
                write_jsonl(log.query(tx, max_seq=through), handle)
        pruned = prune_through(tx, log, through, before, "prune-" + uuid.uuid4().hex[:12], now)
        checkpoint_out.write_text(checkpoint_json(prune_checkpoint(pruned.head, log.key, now)),
                                  encoding="utf-8")
    out.print(f"pruned {pruned.removed} entries (through seq {through}); the log goes on from "
              f"{pruned.head.anchor}; checkpoint: {checkpoint_out}", markup=False)


@contextlib.contextmanager
def _listening(listen: Optional[str], cfg, store, more_routes=None):
    """The daemon's HTTP listener with its routes, while the daemon runs (nothing without --listen)."""
    if not listen:
        yield None
        return
    from core.board import board_route
    from core.listener import Listener, parse_listen
    try:
        listener = Listener(*parse_listen(listen))
    except (ConfigError, OSError) as exc:
        _fail([f"--listen {listen}: {exc}"])
    listener.route("/board", board_route(store, cfg.policy))
    if more_routes is not None:
        more_routes(listener)
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()


@audit_app.command("verify-export")
def audit_verify_export(export: Path = typer.Argument(..., help="JSON Lines from `audit --format jsonl`"),
                        checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="checkpoint the export must reach")) -> None:
    """Verify exported audit entries without the store (for auditors): hashes, links, checkpoint."""
    from core.audit import audit_key
    from core.audit_chain import CheckpointError, load_checkpoint
    from core.audit_evidence import check_against, check_export
    key, problems, data = audit_key(), [], {}
    try:
        if checkpoint:
            data = json.loads(_read_file(checkpoint))
            problems += load_checkpoint(json.dumps(data), str(checkpoint), key)[1]
        with export.open(encoding="utf-8") as lines:
            result = check_export(lines, str(export), key, data.get("keyed_from"), data.get("last_seq"))
    except (CheckpointError, OSError, ValueError) as exc:
        _fail([str(exc)])
    if checkpoint:
        check_against(result, data, str(export))
    out.print(f"{result.entries} entries (seq {result.first_seq}-{result.last_seq}, {result.keyed} "
              f"keyed), last hash {result.last_hash}", markup=False)
    if problems + result.problems:
        _fail(problems + result.problems, EXIT_PARTIAL)
    out.print("export intact")


@app.command()
def trace(record: str = typer.Argument(..., help="TRACKER:ID (or key), e.g. azure_devops:42 or jira:ENG-7"),
          field: Optional[str] = typer.Option(None, "--field", help="native field path or model field"),
          as_json: bool = typer.Option(False, "--json", help="JSON Lines"),
          config: Path = ConfigOption) -> None:
    """Every value tiersync wrote into one record, newest first, with its source and rule."""
    from core.trace import describe, trace as trace_record
    tracker, _, ref = record.partition(":")
    cfg = _load(config)
    if tracker not in cfg.trackers or not ref:
        _fail([f"trace: give TRACKER:ID with one of {', '.join(cfg.trackers)} (got {record!r})"])
    store = _store(cfg)
    count = 0
    with store.transaction() as tx:
        for value in trace_record(tx, tracker, ref, field):
            count += 1
            text = json.dumps(value.as_json(), default=str) if as_json else describe(value)
            out.print(escape_control(redact_text(text)), markup=False)  # no escape sequences
    if not count and not as_json:
        out.print(f"tiersync wrote nothing{' to ' + field if field else ''} in {record}", markup=False)


@app.command()
def report(start: str = typer.Option(..., "--from", help="first day (or ISO time) of the period"),
           end: str = typer.Option(..., "--to", help="last day (inclusive) or ISO time (exclusive)"),
           fmt: str = typer.Option("html", "--format", help="html | csv | json"),
           out_file: Path = typer.Option(..., "--out", help="file to write"),
           config: Path = ConfigOption) -> None:
    """SLA compliance for a period: on-time shares, breaches, time in states, escalations."""
    from core.sla_report import ReportError, build_report, parse_period
    from core.report_render import render
    cfg = _load(config)
    try:
        period = parse_period(start, end)
    except ReportError as exc:
        _fail([str(exc)])
    if fmt not in ("html", "csv", "json"):
        _fail([f"report --format {fmt!r}: use html, csv or json"])
    store = _store(cfg)
    with store.transaction() as tx:
        data = build_report(tx, period, datetime.now(timezone.utc))
    render(data, fmt, out_file)
    out.print(f"report {period.label} written to {out_file}", markup=False)


@app.command()
def board(out_file: Path = typer.Option(..., "--out", help="HTML file to write"),
          refresh: int = typer.Option(60, "--refresh", help="seconds between the page's reloads"),
          config: Path = ConfigOption) -> None:
    """The queue managers' board of open escalations (HTML, refreshing itself)."""
    from core.board import board_html
    cfg = _load(config)
    store = _store(cfg)
    out_file.write_text(board_html(store, cfg.policy, datetime.now(timezone.utc), refresh),
                        encoding="utf-8")
    out.print(f"board written to {out_file}", markup=False)


# --- secrets and store commands (issue 10 items 7-9) ---
@app.command()
def prune(older_than: float = typer.Option(..., "--older-than", min=0, metavar="DAYS",
                                           help="remove what finished more than DAYS days ago"),
          config: Path = ConfigOption,
          vacuum: bool = typer.Option(True, "--vacuum/--no-vacuum",
                                      help="SQLite: give the freed space back to the disk"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Remove finished outbox rows, old history, resolved quarantine entries and old runs.

    Kept: the latest state of every escalation, pending actions, dead letters, unresolved quarantine entries and the whole audit log (its chain stays verifiable)."""
    from datetime import timedelta
    from core.prune import prune as prune_store, vacuum as vacuum_store
    cfg = _load(config)
    store = _store(cfg)
    now = datetime.now(timezone.utc)
    with store.transaction() as tx:
        result = prune_store(tx, now - timedelta(days=older_than), now)
    if vacuum:
        vacuum_store(store)
    store.close()
    if as_json:
        write_json(result.as_dict(), sys.stdout)
        return
    out.print(" ".join(f"{k}={v}" for k, v in result.as_dict().items()) + " (rows removed)",
              markup=False)


def main() -> None:
    from core import collector
    collector.tune()  # the collector's pace for a long sync (core/collector.py)
    try:
        app()
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"error: {redact_text(problem)}", markup=False)
        sys.exit(EXIT_CONFIG)


if __name__ == "__main__":
    main()
