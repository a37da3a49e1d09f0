"""What the engine hands the policy and what the policy hands back.

A policy is a pure function ``decide(before, after, observation, now) -> Decision``: no I/O, no
clock of its own. The engine applies ``Decision.changes`` to the escalation, turns the new
model into per-tracker updates through the mappings, and queues mirrors and notes in the outbox.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from core.model import Comment, Escalation


@dataclass(frozen=True)
class Observation:
    """What one tracker record said that differs from what tiersync last saw of it."""

    tracker: str  # connector name
    remote_id: str
    changes: dict[str, Any]  # model field -> value, only fields that changed on that record
    updated_at: datetime
    new_comments: tuple[Comment, ...] = ()
    opened: bool = False  # this record just opened a new escalation
    version: str | None = None


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired, for the audit log and ``tiersync explain``."""

    family: str  # validation | routing | sla | escalation | tiers | sync
    rule: str
    detail: str = ""


@dataclass(frozen=True)
class CreateMirror:
    """Create the escalation's record in ``tracker`` (once; idempotent by escalation + tracker)."""

    tracker: str
    rule: str
    fields: dict[str, Any] = field(default_factory=dict)  # extra native fields (project, area…)


NoteTarget = Literal["origin", "mirrors", "all", "others"]  # others: all but the observed one


@dataclass(frozen=True)
class Note:
    """A comment to post to a NoteTarget or to one connector name."""

    target: str  # NoteTarget or a connector name
    body: str
    rule: str
    public: bool = False
    key: str | None = None  # de-duplication key: the same key is posted at most once per record
    # people (addresses from the directory) each tracker notifies of this note: Zendesk
    # followers, Jira watchers and mentions, Azure DevOps mentions
    notify: tuple[str, ...] = ()


@dataclass
class Decision:
    changes: dict[str, Any] = field(default_factory=dict)  # model field -> new value
    mirrors: list[CreateMirror] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    hits: list[RuleHit] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # model field -> rule(s) that set it

    def merge(self, other: "Decision") -> "Decision":
        rules = ",".join(f"{hit.family}.{hit.rule}" for hit in other.hits)
        for name in other.changes:
            self.sources[name] = other.sources.get(name) or rules or self.sources.get(name, "")
        self.changes.update(other.changes)
        self.mirrors.extend(other.mirrors)
        self.notes.extend(other.notes)
        self.hits.extend(other.hits)
        return self


class Policy(Protocol):
    def decide(self, before: Escalation | None, after: Escalation,
               observation: Observation | None, now: datetime) -> Decision:
        """Actions for an escalation that changed (or, with no observation, a periodic check)."""
        ...
