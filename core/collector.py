"""The garbage collector's pace for a long-running sync (issue 11: time per record flat in N).

CPython collects its oldest generation each time the objects that survived younger collections
grow by a quarter, and with the default thresholds (700, 10, 10) a young collection runs every
700 container allocations. A sync allocates a few thousand containers per record (rows, model
dicts, audit payloads) and keeps a working set that grows with what it holds (caches, the page's
state; in the benchmark also the in-memory trackers' records), so the full collections come
often and each traverses everything: measured with ``bench/engine.py``'s update wave, 0.14 s of
1.9 s at N = 1,000 but 2.4-3.0 s of 21-24 s at N = 10,000 (23 full collections in one wave).

``tune()`` sets the thresholds to (50,000, 20, 20): young collections every 50,000 allocations,
so reference cycles wait a little longer (a few MB at most; everything else is freed by
reference counting as before). Measured the same way, the wave at N = 10,000 then spends 0.04 s
in the collector and runs no full collection. Called once by the command line (``sync.main``)
and the benchmark; never by the engine itself, which a host program may run under its own
settings.
"""
from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 20)


def tune() -> None:
    """Set the collector's thresholds for a sync process (see the module docstring)."""
    gc.set_threshold(*THRESHOLDS)
