"""One daemon among several on a PostgreSQL store: its liveness lease, its pull leases, and the
heartbeat that keeps them and wakes the daemon when there is work to take over.

Rules:
- a worker holds ``worker:<id>`` while it lives; its outbox claims count only while that lease
  does (core/shared.py), so a killed daemon's actions are free after ``lease_seconds``;
- each connector is pulled by the one worker holding ``pull:<connector>``; a worker takes free
  or expired pull leases up to its fair share (connectors / live workers, rounded up) and
  gives up those beyond it, so the pulls spread over the daemons and move on when one dies;
- the heartbeat renews every lease every ``lease_seconds / 3``; a lease this worker could not
  renew in time counts as lost at once (it stops pulling before anyone else may start);
- the heartbeat takes over at once when a pull lease is free or a dead worker's actions wait:
  it takes free pull leases up to the fair share (it never gives one up: a lane may be pulling
  it; that is the cycle's ``balance``), frees the dead worker's claims and wakes the daemon. A
  killed daemon's work so passes on within ``lease_seconds`` (its lease runs out) plus one
  heartbeat (``lease_seconds / 3``), however long the live daemons' cycles take; the connector
  is pulled from the taker's next cycle on, the actions by the next outbox pass of any daemon;
- a worker whose configuration is not the one in force (core/config_agreement.py) holds no
  pull lease and no claim: it steps back until it is.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from datetime import datetime
from typing import Callable

from core import leases
from core.config_agreement import InForce, agreeing, announce_name, in_force
from core.leases import PULL, WORKER
from core.model import utcnow
from core.shared import release, release_dead, stale_claims
from core.store import Store

log = logging.getLogger("tiersync.worker")


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(self, store: Store, connectors: list[str], *, lease_seconds: float = 15.0,
                 wake: threading.Event | None = None, clock: Callable[[], datetime] = utcnow,
                 ident: str | None = None, config: str = ""):
        self.store = store
        self.config = config  # fingerprint of this daemon's rules ("" announces none)
        self.outdated_by: InForce | None = None  # the configuration in force, when not ours
        self.connectors = list(connectors)
        self.lease_seconds = lease_seconds
        self.wake = wake or threading.Event()
        self.clock = clock
        self.id = ident or worker_id()
        self._pulls: set[str] = set()
        self._valid_until = 0.0  # monotonic time until which the leases surely hold
        self._guard = threading.Lock()
        self._taking = threading.Lock()  # one thread at a time takes pull leases
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifetime -------------------------------------------------------------------------------
    def start(self) -> None:
        self.beat()
        self.balance()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        log.info("worker %s started; pulls %s", self.id, sorted(self._pulls) or "none yet")

    def stop(self) -> None:
        """Stop the heartbeat and hand everything back at once (a clean stop needs no expiry)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self.store.transaction() as tx:
            release(tx, self.id)
            leases.release(tx, self.id)
        with self._guard:
            self._pulls.clear()

    # -- what this worker holds -----------------------------------------------------------------
    def holds(self, connector: str) -> bool:
        with self._guard:
            return connector in self._pulls and time.monotonic() < self._valid_until

    def steps_back(self) -> InForce | None:
        """The configuration in force when it is not this worker's (then it does no work)."""
        with self._guard:
            return self.outdated_by

    def alive(self) -> bool:
        """Whether this worker's leases (and so its outbox claims) surely still hold."""
        with self._guard:
            return time.monotonic() < self._valid_until

    def pulls(self) -> set[str]:
        with self._guard:
            return set(self._pulls)

    def beat(self) -> None:
        """Renew this worker's leases (its own first); what it no longer holds is dropped."""
        began = time.monotonic()
        now = self.clock()
        with self.store.transaction() as tx:
            leases.acquire(tx, WORKER + self.id, self.id, self.lease_seconds, now)
            if self.config:
                leases.acquire(tx, announce_name(self.id, self.config), self.id,
                               self.lease_seconds, now)
            names = leases.renew(tx, self.id, self.lease_seconds, now)
            names = self._agree(tx, names, now)
        with self._guard:
            self._pulls = {n[len(PULL):] for n in names if n.startswith(PULL)}
            self._valid_until = began + self.lease_seconds * 0.9

    def _agree(self, tx, names: list[str], now: datetime) -> list[str]:
        """Step back (no pull lease, no claim) while another configuration is in force."""
        current = in_force(tx, now) if self.config else None
        outdated = current if current is not None and current.fingerprint != self.config else None
        if outdated is not None:
            pulls = [n for n in names if n.startswith(PULL)]
            if pulls:
                leases.release(tx, self.id, pulls)
            release(tx, self.id)
            names = [n for n in names if not n.startswith(PULL)]
        if (outdated is None) != (self.steps_back() is None):
            self._say_agreement(outdated)
        with self._guard:
            self.outdated_by = outdated
        return names

    def _say_agreement(self, outdated: InForce | None) -> None:
        if outdated is None:
            log.info("worker %s: its configuration is the one in force again; it works", self.id)
            return
        log.error("worker %s steps back: daemon %s started later with other policy or mapping "
                  "files (rules %s, this daemon's %s); restart this daemon with the same files",
                  self.id, outdated.worker, outdated.fingerprint, self.config)

    def balance(self) -> None:
        """Take free pull leases up to the fair share; give up those beyond it."""
        if self.steps_back() is not None:
            self.beat()
            return
        self._take_pulls(give_up=True)
        self.beat()

    def _take_pulls(self, give_up: bool) -> None:
        """Free pull leases up to the fair share; with ``give_up``, those beyond it go back."""
        now = self.clock()
        with self._taking, self.store.transaction() as tx:
            share = math.ceil(len(self.connectors) / max(1, self._peers(tx, now)))
            held = leases.holders(tx, now)
            mine = [c for c in self.connectors if held.get(PULL + c) == self.id]
            extra = mine[share:] if give_up else []
            if extra:
                leases.release(tx, self.id, [PULL + c for c in extra])
            for name in self._rotation():
                if len(mine) - len(extra) >= share:
                    break
                if PULL + name not in held and leases.acquire(tx, PULL + name, self.id,
                                                              self.lease_seconds, now):
                    mine.append(name)
                    log.info("worker %s now pulls %s", self.id, name)

    def take_over(self) -> None:
        """A dead worker's work, now (the heartbeat's, while the daemon may be mid-cycle): free
        pull leases up to the fair share (none given up), the dead workers' claims freed."""
        if self.steps_back() is not None:
            return
        self._take_pulls(give_up=False)
        with self.store.transaction() as tx:
            freed = release_dead(tx, self.clock())
        if freed:
            log.info("worker %s freed %d action(s) claimed by a daemon that died", self.id, freed)
        self.beat()

    def _peers(self, tx, now: datetime) -> int:
        """Live workers sharing the pulls: those running this worker's rules (a worker that
        steps back takes no share)."""
        if self.config:
            return len(agreeing(tx, self.config, now))
        return len(leases.live_workers(tx, now))

    def work_waiting(self) -> bool:
        """A pull lease nobody holds, or actions claimed by a worker that died."""
        now = self.clock()
        with self.store.transaction() as tx:
            held = leases.holders(tx, now)
            free = any(PULL + c not in held for c in self.connectors)
            return free or stale_claims(tx, now) > 0

    def _rotation(self) -> list[str]:
        """The connectors in an order of this worker's own, so that workers spread over them."""
        start = sum(map(ord, self.id)) % max(1, len(self.connectors))
        return self.connectors[start:] + self.connectors[:start]

    def heartbeat(self) -> None:
        """One beat: leases renewed; a dead worker's work taken over, and the daemon woken."""
        self.beat()
        if self.work_waiting():
            self.take_over()
            self.wake.set()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.heartbeat()
            except Exception as exc:  # the store is unreachable: leases lapse, work stops
                log.warning("worker %s heartbeat failed: %s", self.id, exc)
