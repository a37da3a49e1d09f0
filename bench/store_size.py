"""Store size: one escalation with a 5 MB description over several versions, and the cost per
escalation of 1,000 escalations after two cycles (in-memory trackers, the shipped mappings and
policy, a SQLite store). Prints ``name=value`` lines.

    python bench/store_size.py [--escalations 1000] [--versions 8]

Sizes are the SQLite file after a WAL checkpoint; ``*_pruned_*`` after ``tiersync prune
--older-than 0`` and VACUUM (run on this tree; on a tree without prune those lines are absent).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.connector import RemoteComment  # noqa: E402
from connectors.memory import MemoryConnector  # noqa: E402
from core.engine import SyncEngine  # noqa: E402
from core.mapping import load_mapping  # noqa: E402
from core.policy import load_policy  # noqa: E402
from core.store import Store  # noqa: E402
from tests.engine_helpers import Clock, partner_ticket  # noqa: E402

TRACKERS = ("zendesk", "azure_devops", "jira")


def _engine(db: Path) -> tuple[SyncEngine, dict[str, MemoryConnector], Store, Clock]:
    trackers = {name: MemoryConnector(name) for name in TRACKERS}
    mappings = {name: load_mapping(ROOT / "mappings" / f"{name}.yaml") for name in TRACKERS}
    store = Store(f"sqlite:///{db}")
    store.migrate()
    clock = Clock()
    engine = SyncEngine(store, trackers, mappings, load_policy(ROOT / "mappings" / "policy.yaml"),
                        clock=clock)
    return engine, trackers, store, clock


def _ticket(sr: str, **overrides) -> dict:
    """A ticket the shipped policy accepts and routes (seed 000's mandatory fields set)."""
    return partner_ticket(**{"subject": f"{sr} - SAS web address doesn't work",
                             "custom_fields.360010000001": sr, "organization.name": "Contoso",
                             "custom_fields.360010000017": "Ana Souza",
                             "custom_fields.360010000014": "scope_cloud",
                             "custom_fields.360010000008": "SELLER-4711", **overrides})


def _size(store: Store, db: Path) -> int:
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def _pruned(store: Store, db: Path, clock: Clock) -> int | None:
    import core
    if not (Path(core.__file__).parent / "prune.py").exists():  # a tree from before prune
        return None
    from core.prune import prune, vacuum
    with store.transaction() as tx:
        prune(tx, clock.advance(days=1), clock())
    vacuum(store)
    return _size(store, db)


def big_description(folder: Path, versions: int) -> dict[str, float]:
    db = folder / "big.db"
    engine, t, store, clock = _engine(db)
    line = "Stack trace line: at com.contoso.billing.InvoiceService.render(InvoiceService.java:42)\n"
    description = (line * (5_000_000 // len(line) + 1))[:5_000_000]
    ticket = t["zendesk"].put(_ticket("10000000000001", description=description))
    engine.run_cycle()
    first = _size(store, db)
    mirrors = sum(len(t[name].records) for name in ("azure_devops", "jira"))
    severities = ["sev_3", "sev_2", "sev_4", "sev_1"]
    for n in range(versions):
        clock.advance(minutes=5)
        comment = RemoteComment(id=f"c{n}", body=f"Update {n}: still failing on build 4.2.{n}.",
                                public=True, created_at=clock(), author="partner@example.com")
        record = t["zendesk"].records[ticket.id]
        t["zendesk"].put({**record.data, "custom_fields.360010000002": severities[n % 4]},
                         remote_id=ticket.id, comments=[*record.comments, comment])
        engine.run_cycle()
    with store.transaction() as tx:
        version = max(h["version"] for h in store.history_of(tx, _escalation_id(store, tx)))
    after = _size(store, db)
    pruned = _pruned(store, db, clock)
    store.close()
    result = {"store_5mb.versions": version, "store_5mb.mirrors": mirrors, "store_5mb.first_cycle_mb": first / 1e6,
              "store_5mb.after_versions_mb": after / 1e6}
    if pruned is not None:
        result["store_5mb.after_prune_mb"] = pruned / 1e6
    return result


def _escalation_id(store: Store, tx) -> str:
    from core import schema
    from sqlalchemy import select
    return tx.execute(select(schema.escalations.c.id)).scalar()


def many(folder: Path, count: int) -> dict[str, float]:
    db = folder / "many.db"
    engine, t, store, clock = _engine(db)
    for n in range(count):
        sr = f"{10_000_000_000_000 + n}"
        t["zendesk"].put(_ticket(sr, subject=f"{sr} - Bench case {n}"))
    engine.run_cycle()
    clock.advance(minutes=10)
    engine.run_cycle()
    size = _size(store, db)
    pruned = _pruned(store, db, clock)
    store.close()
    result = {"store_many.escalations": count, "store_many.bytes_per_escalation": size / count}
    if pruned is not None:
        result["store_many.pruned_bytes_per_escalation"] = pruned / count
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--escalations", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=8)
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="tiersync-store-bench-") as folder:
        figures = {**big_description(Path(folder), args.versions), **many(Path(folder), args.escalations)}
    for name, value in figures.items():
        print(f"{name}={value:.2f}" if isinstance(value, float) else f"{name}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
