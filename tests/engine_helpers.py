"""An engine wired to in-memory connectors and the shipped mappings, for engine unit tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from connectors.memory import MemoryConnector
from core.decision import CreateMirror, Decision, Note, RuleHit
from core.engine import SyncEngine
from core.mapping import load_mapping
from core.model import SupportTier
from core.store import Store

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


class Clock:
    def __init__(self, start: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


class RouteToTier2:
    """A test policy: route every new escalation to an Azure DevOps mirror, announce state changes.

    The engine's tests use this double so that they do not depend on the shipped policy's rules
    (which have tests of their own).
    """

    def __init__(self, mirror_to: str = "azure_devops"):
        self.mirror_to = mirror_to

    def decide(self, before, after, observation, now) -> Decision:
        decision = Decision()
        if after.routing_rule is None and after.state.is_open:
            decision.changes.update(routing_rule="tier2", queue="Marketplace Experience",
                                    tier=SupportTier.L2)
            if after.link_for(self.mirror_to) is None:
                decision.mirrors.append(CreateMirror(self.mirror_to, "routing.tier2"))
            decision.hits.append(RuleHit("routing", "tier2"))
        if observation and before is not None and before.state != after.state:
            decision.notes.append(Note(target="others", rule="sync.announce_state",
                                       body=f"State changed from {before.state.value} to "
                                            f"{after.state.value} in {observation.tracker}.",
                                       key=f"state:{after.version}"))
        return decision


def make_engine(db_path: Path, trackers=None, clock=None, policy=None) -> tuple[SyncEngine, dict]:
    trackers = trackers or {"zendesk": MemoryConnector("zendesk"),
                            "azure_devops": MemoryConnector("azure_devops")}
    mappings = {name: load_mapping(MAPPINGS / f"{name}.yaml") for name in trackers}
    store = Store(db_path if isinstance(db_path, str) else f"sqlite:///{db_path}")
    store.migrate()
    engine = SyncEngine(store, trackers, mappings, policy or RouteToTier2(),
                        clock=clock or Clock())
    return engine, trackers


def partner_ticket(**overrides) -> dict:
    data = {
        "subject": "12345678901234 - SAS web address doesn't work",
        "description": "The SAS URL returns 403 since this morning.",
        "status": "new",
        "priority": "high",
        "tags": ["escalate_tier2"],
        "requester.email": "support@partner.example",
        "requester.name": "Partner Support",
        "assignee.email": "agent1@tier1.example",
        "custom_fields.360010000002": "sev_2",
        "custom_fields.360010000003": "plan_enterprise",
        "custom_fields.360010000004": "Technical",
        "custom_fields.360010000005": "Azure Application Offer",
    }
    data.update(overrides)
    return data
