"""The package's shape: imports run one way, and ``analysis.__all__`` is what it exports."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import analysis

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def run_layer_check(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd, env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )


def test_imports_run_from_the_front_door_down_to_the_shared_parts():
    result = run_layer_check(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_layer_check_fails_when_a_shared_part_imports_the_front_door(tmp_path):
    shutil.copytree(ROOT / "analysis", tmp_path / "analysis", ignore=shutil.ignore_patterns("__pycache__"))
    connections = tmp_path / "analysis" / "connections.py"
    # Even hidden inside a function, an upward import is an import.
    connections.write_text(connections.read_text() + "\n\ndef _sneaky():\n    from .workbench import connect\n")
    result = run_layer_check(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "analysis.connections -> analysis.workbench" in result.stdout


def test_no_module_of_the_package_imports_the_package_itself():
    # `import analysis` inside analysis/ would run __init__, which imports every layer.
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "analysis").rglob("*.py")
        if any(line.startswith(("import analysis", "from analysis")) for line in path.read_text().splitlines())
    ]
    assert offenders == []


def test_all_lists_exactly_what_the_package_exports():
    exported = {
        name
        for name, value in vars(analysis).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, types.ModuleType)
    }
    assert analysis.__all__ == sorted(analysis.__all__)
    # `jobs` is the one public submodule: analysis.jobs.run(...) is how a cron script exits.
    assert set(analysis.__all__) == exported | {"jobs"}
