"""The supported versions: declared in pyproject.toml, pinned low in constraints-lowest.txt,
and checked when ``analysis`` is imported."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def declared() -> dict[str, Requirement]:
    """The project's requirements (every extra included), by normalised name."""
    found = {}
    for text in requires("flask-data-workbench") or []:
        requirement = Requirement(text)
        found[requirement.name.lower().replace("_", "-")] = requirement
    return found


def lowest_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints-lowest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            pins[name.strip().lower()] = pinned.strip()
    return pins


def test_each_lowest_pin_is_the_declared_lower_bound():
    requirements = declared()
    pins = lowest_pins()
    for name in ("flask", "flask-sqlalchemy", "sqlalchemy", "pandas", "pyarrow", "tqdm"):
        assert name in pins, f"constraints-lowest.txt pins no {name}"
    for name, pinned in pins.items():
        if name not in requirements:
            continue  # a dependency of a dependency, pinned so the lowest set installs together
        lower = [Version(s.version) for s in requirements[name].specifier if s.operator == ">="]
        assert lower == [Version(pinned)], f"{name}: pyproject.toml says {requirements[name].specifier}, constraints-lowest.txt {pinned}"


@pytest.fixture(scope="session")
def flask_sqlalchemy_2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flask-SQLAlchemy 2.5.1, the last 2.x, installed into a folder of its own."""
    target = tmp_path_factory.mktemp("flask-sqlalchemy-2.5")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), "flask-sqlalchemy==2.5.1"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return target


def test_importing_under_an_unsupported_flask_sqlalchemy_is_one_clear_error(flask_sqlalchemy_2, tmp_path):
    code = (
        "try:\n"
        "    import analysis\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, e, sep=': ')\n"
        "    raise\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{flask_sqlalchemy_2}:{ROOT}"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout.count("\n") == 1, result.stdout  # caught as an ImportError, one line
    message = result.stdout.strip()
    assert "Flask-SQLAlchemy 2.5.1" in message and ">=3.0.3" in message, message
    # One exception, not a chain ending in a private name of Flask.
    assert result.stderr.count("Traceback (most recent call last)") == 1, result.stderr
    assert "_app_ctx_stack" not in result.stderr


def test_the_import_check_knows_the_declared_ranges():
    from analysis.versions import SUPPORTED

    requirements = declared()
    for distribution, (_, supported) in SUPPORTED.items():
        assert requirements[distribution].specifier == Requirement(f"x{supported}").specifier, distribution
