"""tiersync's command line: parses arguments, loads the configuration, wires the parts.

No business logic lives here; this is the only place that decides exit codes:
0 clean, 1 some records or actions failed while the rest synced, 2 configuration or connection
error, 3 another tiersync process holds the store.
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

from core.errors import ConfigError, TiersyncError
from core.redact import install_log_redaction, redact_text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Keep support escalations in sync across Zendesk, Jira and Azure DevOps.")
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
ConfigOption = typer.Option(Path("tiersync.yaml"), "--config", "-c", envvar="TIERSYNC_CONFIG",
                            help="configuration file")


# -- wiring --------------------------------------------------------------------------------------
def _setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_log_redaction()


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
                           "level": record.levelname, "logger": record.name,
                           "message": redact_text(record.getMessage())})


def _fail(problems: list[str], code: int = EXIT_CONFIG) -> None:
    for problem in problems:
        err.print(f"error: {redact_text(problem)}", markup=False)
    raise typer.Exit(code)


def _load(config_path: Path):
    from core.config import load_config
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _fail(exc.problems)
    _setup_logging(config.settings.log_level, config.settings.log_format)
    return config


def _store(config, dry_run: bool = False):
    from core.store import Store
    store = Store(config.settings.store, dry_run=dry_run)
    try:
        store.migrate()
    except Exception as exc:  # unreachable database, bad permissions
        _fail([f"store {config.settings.store}: {exc}"])
    return store


def _connectors(config) -> dict:
    from connectors import load_registry
    registry = load_registry()
    connectors = {}
    try:
        for name, tracker in config.trackers.items():
            connectors[name] = registry[tracker.kind](name, tracker)
    except TiersyncError as exc:
        _fail([str(exc)])
    return connectors


def _engine(config, store, connectors):
    from core.engine import EngineSettings, SyncEngine
    settings = EngineSettings(**config.settings.engine.model_dump())
    return SyncEngine(store, connectors, config.mappings, config.policy, settings=settings)


# -- commands ------------------------------------------------------------------------------------
@app.command()
def check(config: Path = ConfigOption,
          online: bool = typer.Option(False, help="also connect to each tracker and verify fields")) -> None:
    """Validate the configuration, mappings and policy; print every problem (exit 2 on error)."""
    from core.config import load_config, missing_secrets
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _fail(exc.problems)
    missing = missing_secrets(cfg)
    problems = missing if online else []
    if online and not problems:
        problems = _online_problems(cfg)
    if problems:
        _fail(problems)
    for warning in missing:
        err.print(f"warning: {warning} (needed to run)", markup=False)
    out.print(f"ok: {config}: {len(cfg.trackers)} trackers "
              f"({', '.join(f'{n}={t.kind}' for n, t in cfg.trackers.items())}), "
              f"{sum(len(m.fields) for m in cfg.mappings.values())} mapped fields, store {cfg.settings.store}",
              markup=False)


def _online_problems(cfg) -> list[str]:
    problems: list[str] = []
    for name, connector in _connectors(cfg).items():
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


@app.command()
def run(config: Path = ConfigOption,
        once: bool = typer.Option(True, "--once", help="run one cycle and exit (the default; "
                                  "`tiersync daemon` repeats cycles)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="read and plan, write nothing")) -> None:
    """Run one sync cycle: pull, reconcile, decide, push."""
    cfg = _load(config)
    store = _store(cfg, dry_run=dry_run)
    with _single_instance(cfg):
        engine = _engine(cfg, store, _connectors(cfg))
        report = engine.run_cycle(dry_run=dry_run)
    store.close()
    _print_report(report)
    raise typer.Exit(report.exit_code)


@app.command()
def daemon(config: Path = ConfigOption,
           interval: Optional[float] = typer.Option(None, "--interval", help="seconds between cycles")) -> None:
    """Repeat sync cycles until SIGTERM/SIGINT; the current page is finished cleanly."""
    cfg = _load(config)
    every = interval or cfg.settings.daemon.interval_seconds
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    store = _store(cfg)
    with _single_instance(cfg):
        engine = _engine(cfg, store, _connectors(cfg))
        log = logging.getLogger("tiersync.daemon")
        log.info("daemon started, a cycle every %.0fs", every)
        while not stop.is_set():
            report = engine.run_cycle(stop=stop.is_set)
            log.info("cycle %s: %s", report.run_id, json.dumps(report.as_dict()))
            stop.wait(every)
        log.info("stopping: signal received, current page finished")
    store.close()


@contextlib.contextmanager
def _single_instance(cfg):
    from core.lock import StoreLock, StoreLocked
    lock = StoreLock.for_url(cfg.settings.store).held()
    try:
        lock.__enter__()
    except StoreLocked as exc:
        _fail([str(exc)], EXIT_LOCKED)
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def _print_report(report) -> None:
    data = report.as_dict()
    errors = data.pop("connector_errors")
    out.print(" ".join(f"{k}={v}" for k, v in data.items() if k not in ("stopped_early",)), markup=False)
    for error in errors:
        err.print(f"error: {redact_text(error)}", markup=False)
    if report.dry_run and report.planned:
        out.print(f"dry run: {len(report.planned)} actions would be sent:")
        for action in report.planned:
            out.print(f"  {action['kind']:7} {action['connector']:14} {action['remote_id'] or '(new)':10} "
                      f"{redact_text(json.dumps(action['payload'], default=str))[:160]}", markup=False)


@app.command()
def audit(config: Path = ConfigOption,
          escalation: Optional[str] = typer.Option(None, "--escalation", help="escalation id"),
          tracker: Optional[str] = typer.Option(None, "--tracker", help="tracker (connector) name"),
          remote_id: Optional[str] = typer.Option(None, "--id", help="record id in that tracker"),
          since: Optional[datetime] = typer.Option(None, "--since", help="ISO time, UTC if no zone"),
          as_json: bool = typer.Option(False, "--json", help="JSON Lines"),
          verify: bool = typer.Option(False, "--verify", help="check the hash chain")) -> None:
    """Show (or verify) the audit log: every decision, by which run, on which record."""
    from core.audit import AuditLog, write_jsonl
    cfg = _load(config)
    store = _store(cfg)
    log = AuditLog()
    with store.transaction() as tx:
        if verify:
            problems = log.verify(tx)
            if problems:
                _fail(problems, EXIT_PARTIAL)
            out.print("audit log intact")
            return
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        rows = log.query(tx, escalation_id=escalation, tracker=tracker, remote_id=remote_id, since=since)
        if as_json:
            write_jsonl(rows, sys.stdout)
            return
        table = Table("seq", "at", "run", "escalation", "record", "action", "rule", "result")
        for row in rows:
            record = f"{row['tracker']}:{row['remote_id']}" if row["tracker"] else ""
            table.add_row(str(row["seq"]), row["at"].strftime("%Y-%m-%d %H:%M:%S"), row["run_id"],
                          row["escalation_id"] or "", record, row["action"], row["rule"] or "",
                          (row["result"] or "")[:60])
        out.print(table)


@app.command()
def quarantine(config: Path = ConfigOption,
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Records that failed to map, with the reason (they are retried when they change again)."""
    cfg = _load(config)
    store = _store(cfg)
    with store.transaction() as tx:
        rows = store.quarantined(tx)
    if as_json:
        write = [dict(r, created_at=r["created_at"].isoformat()) for r in rows]
        out.print(json.dumps(write, default=str, indent=2), markup=False)
        return
    table = Table("id", "record", "version", "reason", "since")
    for r in rows:
        table.add_row(str(r["id"]), f"{r['connector']}:{r['remote_id']}", r["remote_version"] or "",
                      r["reason"], r["created_at"].strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@app.command()
def status(config: Path = ConfigOption, as_json: bool = typer.Option(False, "--json"),
           all_: bool = typer.Option(False, "--all", help="closed and rejected escalations too")) -> None:
    """Open escalations: links, state, tier, queue, each SLA's due time and remaining business time."""
    from core.policy.report import status_rows
    cfg = _load(config)
    store = _store(cfg)
    escalations = [item.escalation for batch in store.iter_escalations(open_only=not all_)
                   for item in batch]
    rows = status_rows(escalations, cfg.policy, datetime.now(timezone.utc))
    if as_json:
        out.print(json.dumps(rows, default=str, indent=2), markup=False)
        return
    table = Table("escalation", "links", "state", "tier", "queue", "acknowledgement",
                  "first solution", "close")
    for row in rows:
        table.add_row(f"{row['id']}\n{row['sr_number'] or ''}", "\n".join(row["links"]),
                      row["state"], row["tier"], row["queue"] or "",
                      *(_sla_cell(row["sla"].get(m)) for m in ("acknowledgement", "first_solution", "close")))
    out.print(table)


def _sla_cell(metric: Optional[dict]) -> str:
    if not metric:
        return "-"
    due = metric.get("due_at")
    due_text = due.strftime("%Y-%m-%d %H:%M") if hasattr(due, "strftime") else (due or "-")
    remaining = metric.get("remaining_seconds")
    left = "" if remaining is None else f"\n{remaining / 3600:+.1f} h left"
    return f"{metric['status']}\n{due_text}{left}"


@app.command()
def explain(record: str = typer.Argument(..., help="TRACKER:ID, e.g. zendesk:123 or jira:ENG-7"),
            config: Path = ConfigOption) -> None:
    """How one record maps and which validation, routing, SLA and escalation rules fire (writes nothing)."""
    from core.engine import _owners
    from core.inspect import explain_record
    tracker, _, remote_id = record.partition(":")
    cfg = _load(config)
    if tracker not in cfg.trackers or not remote_id:
        _fail([f"explain: give TRACKER:ID with one of {', '.join(cfg.trackers)} (got {record!r})"])
    store = _store(cfg)
    connector = _connectors(cfg)[tracker]
    try:
        lines = explain_record(store, connector, cfg.mappings[tracker], cfg.policy,
                               _owners(cfg.mappings), remote_id, datetime.now(timezone.utc))
    except TiersyncError as exc:
        _fail([str(exc)])
    for line in lines:
        out.print(redact_text(line), markup=False)


@app.command()
def deadletters(config: Path = ConfigOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Actions that kept failing and were set aside; replay them with `tiersync replay`."""
    cfg = _load(config)
    store = _store(cfg)
    with store.transaction() as tx:
        rows = store.actions(tx, state="dead")
    if as_json:
        out.print(json.dumps([dict(r.__dict__, next_attempt_at=r.next_attempt_at.isoformat())
                              for r in rows], default=str, indent=2), markup=False)
        return
    table = Table("id", "escalation", "action", "target", "attempts", "last error")
    for r in rows:
        table.add_row(str(r.id), r.escalation_id, r.kind, f"{r.connector}:{r.remote_id or '(new)'}",
                      str(r.attempts), redact_text(r.last_error or "")[:100])
    out.print(table)


@app.command()
def replay(action_id: Optional[int] = typer.Argument(None, help="dead-lettered action id"),
           all_: bool = typer.Option(False, "--all", help="replay every dead-lettered action"),
           config: Path = ConfigOption) -> None:
    """Queue dead-lettered actions again; the next cycle sends them."""
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
    from simulators.demo import run_demo
    _setup_logging("WARNING")
    folder = workdir or Path(tempfile.mkdtemp(prefix="tiersync-demo-"))
    url = f"sqlite:///{store.resolve()}" if store else None
    raise typer.Exit(run_demo(folder, out, store_url=url))


@app.command()
def simulate(workdir: Optional[Path] = typer.Option(None, "--workdir", help="folder for the generated config")) -> None:
    """Start the three tracker simulators alone and print how to point tiersync at them."""
    import tempfile
    from simulators.sandbox import Sandbox
    _setup_logging("WARNING")
    folder = workdir or Path(tempfile.mkdtemp(prefix="tiersync-sim-"))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Sandbox(folder) as box:
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
        out.print("fault injection: POST /_sim/faults on any simulator; Ctrl-C stops", markup=False)
        stop.wait()


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"error: {redact_text(problem)}", markup=False)
        sys.exit(EXIT_CONFIG)


if __name__ == "__main__":
    main()
