"""The three tracker simulators on localhost plus a tiersync configuration pointed at them.

Used by ``tiersync demo``, ``tiersync simulate``, the end-to-end tests and the benchmarks:

    with Sandbox(tmp_dir) as box:
        box.people.zendesk.create_ticket(...)
        box.cycle()                       # one real sync cycle over HTTP
        box.snapshot()                    # what each tracker holds now
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from simulators.azure_devops import AzureDevOpsSimulator
from simulators.azure_devops import connector_config as ado_config
from simulators.base import Faults, Simulator
from simulators.jira import JiraSimulator
from simulators.jira import connector_config as jira_config
from simulators.people import People
from simulators.profile import Profile
from simulators.zendesk import ZendeskSimulator
from simulators.zendesk import connector_config as zendesk_config

TRACKERS = ("zendesk", "azure_devops", "jira")
SANDBOX_TIME_SCALE = 0.01  # vendor time windows at 1/100: a minute is 0.6 s


def _section(result: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalise a simulator module's ``connector_config`` result to (section, env)."""
    if isinstance(result, tuple):
        return dict(result[0]), dict(result[1])
    if "config" in result:
        return dict(result["config"]), dict(result.get("env", {}))
    return dict(result), {}


class Sandbox:
    def __init__(self, workdir: Path, *, store_url: str | None = None, policy: str = "policy",
                 faults: dict[str, Faults] | None = None, engine: dict[str, Any] | None = None,
                 profile: Profile | None = None):
        """``profile``: the simulators' realism (simulators/profile.py); realistic by default,
        at ``SANDBOX_TIME_SCALE`` so that Zendesk's one-minute export hold-back is 0.6 s."""
        self.profile = profile or Profile(time_scale=SANDBOX_TIME_SCALE)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.store_url = store_url or f"sqlite:///{self.workdir / 'tiersync.db'}"
        self.policy = policy
        self.engine_options = engine or {}
        faults = faults or {}
        self.sims: dict[str, Simulator] = {
            "zendesk": ZendeskSimulator(faults=faults.get("zendesk"), profile=self.profile),
            "azure_devops": AzureDevOpsSimulator(faults=faults.get("azure_devops"),
                                                 profile=self.profile),
            "jira": JiraSimulator(faults=faults.get("jira")),
        }
        for sim in self.sims.values():
            if sim.profile != self.profile:
                sim.set_profile(realistic=self.profile.realistic, time_scale=self.profile.time_scale)
        self.config_path = self.workdir / "tiersync.yaml"
        self.env: dict[str, str] = {}
        self.people: People | None = None
        self._store = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Sandbox":
        for sim in self.sims.values():
            sim.start()
        sections = {}
        builders = {"zendesk": zendesk_config, "azure_devops": ado_config, "jira": jira_config}
        for name, build in builders.items():
            section, env = _section(build(self.sims[name]))
            sections[name] = section
            self.env.update(env)
        os.environ.update(self.env)
        config = {"store": self.store_url, "policy": self.policy, "trackers": sections}
        if self.engine_options:
            config["engine"] = self.engine_options
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.people = People({name: section for name, section in sections.items()}, self.env)
        return self

    def stop_store(self) -> None:
        """Close the store, as a process exit would; the next engine() reopens it."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def stop(self) -> None:
        self.stop_store()
        for sim in self.sims.values():
            sim.stop()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- tiersync -------------------------------------------------------------------------------
    def load_config(self):
        from wiring import load_config
        return load_config(self.config_path)

    def engine(self, clock=None):
        """A fresh engine (new connectors) on the sandbox's store, as a new process would build."""
        from core.engine import EngineSettings, SyncEngine
        from core.store import Store
        from wiring import build_connectors
        config = self.load_config()
        if self._store is None:
            self._store = Store(config.settings.store)
            self._store.migrate()
        connectors = build_connectors(config)
        settings = EngineSettings(**config.settings.engine.model_dump())
        kwargs = {"clock": clock} if clock else {}
        return SyncEngine(self._store, connectors, config.mappings, config.policy,
                          settings=settings, **kwargs)

    def settle(self) -> float:
        """Wait until every change made in the simulators shows in their feeds (Zendesk's export
        hold-back, index lag); returns the seconds waited."""
        wait = max((sim.settle_seconds() for sim in self.sims.values()), default=0.0)
        if wait > 0:
            time.sleep(wait)
        return wait

    def cycle(self, clock=None, *, settle: bool = True):
        """One real sync cycle; first waits for the feeds to show every change (``settle``)."""
        if settle:
            self.settle()
        engine = self.engine(clock)
        try:
            return engine.run_cycle()
        finally:
            for connector in engine.connectors.values():
                connector.close()

    # -- observation ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {name: sim.snapshot() for name, sim in self.sims.items()}

    def write_requests(self) -> dict[str, int]:
        return {name: len(sim.write_requests()) for name, sim in self.sims.items()}

    def clear_requests(self) -> None:
        for sim in self.sims.values():
            sim.clear_requests()
