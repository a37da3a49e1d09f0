"""The layering (docs/architecture.md) as CI checks it: import-linter's contracts in
pyproject.toml, run by the ``lint-imports`` command beside this interpreter."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ("core knows no tracker", "the tracker simulators know nothing of tiersync",
             "connectors depend on core only", "no import cycles inside core")


def lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("lint-imports")
    command = str(script) if script.exists() else shutil.which("lint-imports")
    assert command, "lint-imports not installed (pip install -e '.[test]')"
    return subprocess.run([command, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_layering_contract_is_kept():
    done = lint_imports("--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in CONTRACTS:
        assert name in done.stdout
    assert "0 broken" in done.stdout


def test_a_core_module_importing_a_connector_breaks_the_contract(tmp_path):
    """The check fails on a violation: a copy of the tree where core imports connectors."""
    copy = tmp_path / "tree"
    for name in ("core", "connectors", "simulators", "harness"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "sync.py", "wiring.py"):
        shutil.copy(ROOT / name, copy / name)
    (copy / "core" / "leak.py").write_text("from connectors.zendesk_view import PATH_PATTERN\n")
    (copy / "simulators" / "leak.py").write_text("import core.model\n")
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import "
                           "lint_imports_command; sys.exit(lint_imports_command(['--no-cache']))"],
                          cwd=copy, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "core knows no tracker, no simulator and no command line BROKEN" in done.stdout
    assert "core.leak -> connectors.zendesk_view" in done.stdout
    assert "the tracker simulators know nothing of tiersync BROKEN" in done.stdout
    assert "simulators.leak -> core.model" in done.stdout


def test_the_wiring_describes_each_connector_as_its_class_does():
    """wiring.KINDS (light, checked without the client libraries) agrees with every connector
    class the connectors register."""
    import wiring
    from connectors import load_registry
    registry = load_registry()
    assert set(wiring.KINDS) == set(registry)
    for kind, cls in registry.items():
        assert wiring.connector_class(kind) is cls
        assert wiring.KINDS[kind].config_model is cls.config_model
        assert wiring.KINDS[kind].field_path_pattern is cls.field_path_pattern
