"""Who gets notified (seed 002): level audiences and the account's CSM as tracker users.

Seed 002: "CSM's are also informed around escalations automatically" and each level alerts more
people. An audience is a name in the policy (``team leads``); the directory turns it into the
addresses of tracker users or groups, which every tracker notifies its own way (Zendesk
followers, Jira watchers and mentions, Azure DevOps mentions). The CSM comes from the
escalation's ``csm_email`` (mapped from the organisation/partner record) or, failing that, the
``csm.table`` by partner name. ``Directory`` is the small lookup interface a full user directory
can replace; ``TableDirectory`` is the configured table.

The addresses are then each tracker's users through that tracker's user directory
(core/people.py: the tracker section's ``people`` override table, the store's cache, the
tracker's own user search), when the note is written (core/people_connector.py): an address a
tracker does not know is left out of the notification and named in an internal note there.
"""
from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.model import Escalation

CSM_AUDIENCE = "Customer Success Manager (CSM)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CsmConfig(_Strict):
    audience: str = CSM_AUDIENCE  # the audience name that stands for the account's CSM
    table: dict[str, str] = Field(default_factory=dict)  # partner name -> CSM address


class PeopleConfig(_Strict):
    audiences: dict[str, list[str]] = Field(default_factory=dict)  # audience -> addresses
    csm: CsmConfig = Field(default_factory=CsmConfig)


class Directory(Protocol):
    def people(self, audience: str, escalation: Escalation) -> tuple[str, ...]:
        """The addresses of the tracker users or groups that make up ``audience``."""
        ...


class TableDirectory:
    """The directory of the policy file's ``people`` section."""

    def __init__(self, config: PeopleConfig):
        self.config = config

    def people(self, audience: str, escalation: Escalation) -> tuple[str, ...]:
        if audience.casefold() == self.config.csm.audience.casefold():
            csm = self.csm(escalation)
            return (csm,) if csm else ()
        wanted = audience.casefold()
        found = next((v for k, v in self.config.audiences.items() if k.casefold() == wanted), [])
        return tuple(found)

    def csm(self, escalation: Escalation) -> str | None:
        if escalation.csm_email:
            return escalation.csm_email
        partner = (escalation.partner_name or "").casefold()
        return next((v for k, v in self.config.csm.table.items() if k.casefold() == partner),
                    None)


NO_DIRECTORY = TableDirectory(PeopleConfig())


def notify_list(directory: Directory, audience: list[str], escalation: Escalation) -> tuple[str, ...]:
    """Every address of every audience, each once, in audience order."""
    seen: list[str] = []
    for name in audience:
        seen += [who for who in directory.people(name, escalation) if who not in seen]
    return tuple(seen)


def unmapped(directory: Directory, audience: list[str], escalation: Escalation) -> list[str]:
    """Audiences that resolve to nobody (for explain)."""
    return [name for name in audience if not directory.people(name, escalation)]
