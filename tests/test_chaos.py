"""The chaos bench (bench/chaos.py), small and seeded: faults on every tracker, the real
``tiersync daemon`` killed with SIGKILL and restarted, and the trackers' final state compared
with a fault-free run of the same scenario. Never duplicate, never lose, never loop."""
from __future__ import annotations

import pytest

from bench.chaos import Options, run

pytestmark = pytest.mark.e2e


def test_small_seeded_chaos_run_converges_without_duplicates_losses_or_loops(tmp_path):
    options = Options(escalations=20, kills=5, seed=20260, workdir=tmp_path, phase_timeout=90)
    summary, report = run(options)
    chaos = report["trials"]["chaos"]
    explain = f"{summary.line()}\n" + "\n".join(report["details"][:40]) + f"\n{chaos}"
    assert chaos["kills"] == 5 and sum(chaos["faults"].values()) > 0, explain
    assert summary.duplicates == 0, explain
    assert summary.lost_updates == 0, explain
    assert summary.loops == 0, explain
    assert summary.deadletters_unresolved == 0, explain
    assert summary.converged, explain
    assert summary.missing_back_links == 0, explain  # re-added by a later cycle
    assert chaos["sigterm_exit"] == 0 and chaos["lock_refusals"] == 0, explain
    assert report["reference_self_duplicates"] == 0, explain
    assert chaos["integrity"] == "ok" and chaos["audit_intact"], explain  # after five SIGKILLs
