"""Fixtures in the style of Flask's tutorial: ``app``, ``client``, ``runner``.

Tests that take ``app`` (or ``database_url``) run once per database backend: SQLite, the
PostgreSQL server and the MariaDB server. Limit a test with ``@pytest.mark.backends("sqlite",
"postgresql")``. A server that is down skips its cases with the reason, except under CI=true
where it fails them: CI must exercise every backend.
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from testing_backends import ALL_BACKENDS, server_unavailable_reason, throwaway_database

ADMIN_PASSWORD = "test-admin-password"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_availability: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): run only on these database backends")
    config.addinivalue_line("markers", "slow: takes several seconds (real kernels, big tables)")
    config.addinivalue_line("markers", "serial: must run alone (restarts a database server, or measures seconds); `make test` runs these first")
    config.addinivalue_line("markers", "browser: drives JupyterLab in a real headless Chromium")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        names = marker.args if marker else ALL_BACKENDS
        metafunc.parametrize("backend", names, scope="function")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not depend on the shell they run in."""
    for name in list(os.environ):
        if name.startswith(("MY_APP_", "FLASK_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> t.Iterator[str]:
    """A URL to an empty database namespace of ``backend``, private to this test."""
    if backend not in _availability:
        _availability[backend] = server_unavailable_reason(backend)
    reason = _availability[backend]
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    with throwaway_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> t.Iterator[Flask]:
    """The host app on a private database, with its tables created."""
    # Imported here, not at the top: the tests of tests/apps/ also run under Flask-SQLAlchemy
    # 3.0, which cannot build my_app's DeclarativeBase model class (make test-lowest).
    from my_app import create_app
    from my_app.db import db

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SQLALCHEMY_DATABASE_URI": database_url,
        }
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def admin_auth() -> tuple[str, str]:
    """HTTP Basic credentials for the admin pages of the ``app`` fixture."""
    return ("admin", ADMIN_PASSWORD)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def seeded_app(app: Flask, runner: FlaskCliRunner) -> Flask:
    """The app with a little deterministic demo data: 20 users, 100 events, 5 data points."""
    result = runner.invoke(args=["seed", "--users", "20", "--events", "100", "--data-points", "5"])
    assert result.exit_code == 0, result.output
    return app


def pytest_terminal_summary(terminalreporter: t.Any, exitstatus: int, config: pytest.Config) -> None:
    """One line per backend: how many of its cases passed, failed or were skipped."""
    counts: dict[str, dict[str, int]] = {name: {} for name in ALL_BACKENDS}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if outcome == "passed" and getattr(report, "when", "call") != "call":
                continue
            params = report.nodeid.rpartition("[")[2].rstrip("]").split("-") if "[" in report.nodeid else []
            for name in ALL_BACKENDS:
                if name in params:
                    counts[name][outcome] = counts[name].get(outcome, 0) + 1
    terminalreporter.write_sep("-", "database backends")
    for name, by_outcome in counts.items():
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(by_outcome.items())) or "no cases"
        terminalreporter.write_line(f"{name}: {summary}")
