"""analysis.job and the example jobs on real databases: commit on success, nothing left on failure."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import subprocess
import sys
import typing as t

import pandas as pd
import pytest
import sqlalchemy as sa
from flask import Flask, has_app_context
from testing_backends import pg_states, wait_for_no_pg_connections

import analysis
from analysis.jobs import run
from my_app.db import db
from my_app.jobs.daily_summary import daily_summary
from my_app.jobs.deactivate_idle_users import deactivate_idle_users
from my_app.models import Data, Event, User

pytestmark = pytest.mark.backends("sqlite", "postgresql")


@pytest.fixture
def url(app: Flask) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"]


@pytest.fixture
def app_env(url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``my_app:create_app`` (as cron would run it) at the test database."""
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def committed(url: str, sql: str) -> t.Any:
    """What a new connection sees: only committed data."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).all()
    finally:
        engine.dispose()


def assert_database_free(url: str, backend: str, application_name: str) -> None:
    """No connection of ours (PostgreSQL) and no transaction holding the file (SQLite)."""
    if backend == "postgresql":
        wait_for_no_pg_connections(application_name, within=5.0)
    else:
        path = sa.make_url(url).database
        conn = sqlite3.connect(path, timeout=0)  # a held write lock would fail at once
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
        finally:
            conn.close()


def test_job_that_succeeds_commits_and_cleans_up(url, backend, caplog):
    caplog.set_level(logging.INFO, logger="analysis.jobs")
    with analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url}, name="nightly") as wb:
        assert wb.writable and wb.application_name.startswith("analysis job my_app pid=")
        wb.session.add(Data(value=1.5, source="job"))
        wb.insert_frame(Data, pd.DataFrame({"value": [2.5, 3.5], "source": "job"}))
        if backend == "postgresql":
            assert pg_states(wb.application_name)  # the name really is on the connection
        name = wb.application_name
    assert wb.closed and not has_app_context()
    assert committed(url, "SELECT value FROM data ORDER BY value") == [(1.5,), (2.5,), (3.5,)]
    assert_database_free(url, backend, name)
    lines = [r.getMessage() for r in caplog.records if r.name == "analysis.jobs"]
    assert lines[0] == "job nightly: starting"
    assert any(line.startswith("job nightly: committed; ran ") and line.endswith(" s in all") for line in lines)


def test_job_that_raises_leaves_no_rows_no_transaction_no_connection(url, backend, caplog):
    caplog.set_level(logging.INFO, logger="analysis.jobs")
    with pytest.raises(RuntimeError, match="boom"):
        with analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url}, name="doomed") as wb:
            wb.insert_frame(Data, pd.DataFrame({"value": range(1000)}))
            wb.session.add(Data(value=-1.0))
            wb.session.flush()
            name = wb.application_name
            raise RuntimeError("boom")
    assert wb.closed and not has_app_context()
    assert committed(url, "SELECT count(*) FROM data") == [(0,)]
    assert_database_free(url, backend, name)
    assert any(
        r.levelno == logging.ERROR and r.getMessage().startswith("job doomed: failed after ")
        and r.getMessage().endswith("rolling back: RuntimeError: boom")
        for r in caplog.records
    )


def test_decorated_job_gets_the_workbench_and_run_gives_the_exit_status(url, backend):
    @analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url})
    def record(wb: analysis.Workbench, value: float, *, fail: bool = False) -> int:
        wb.session.add(Data(value=value, source="decorated"))
        wb.session.flush()
        if fail:
            raise ValueError("bad input")
        return wb.session.scalar(sa.select(sa.func.count()).select_from(Data))

    assert record(1.0) == 1
    assert run(record, 2.0) == 0
    assert run(record, 3.0, fail=True) == 1
    assert committed(url, "SELECT value FROM data ORDER BY value") == [(1.0,), (2.0,)]
    assert record.__name__ == "record" and record.job.writable  # type: ignore[attr-defined]


def test_read_only_job_refuses_writes(url):
    with pytest.raises(analysis.ReadOnlyError):
        with analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url}, writable=False) as wb:
            wb.session.add(Data(value=1.0))
            wb.session.flush()
    assert committed(url, "SELECT count(*) FROM data") == [(0,)]


def test_job_leaves_the_notebook_workbench_alone(url):
    notebook = analysis.connect("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url})
    try:
        with analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url}) as wb:
            assert wb is not notebook and wb.app is not notebook.app
            wb.session.add(Data(value=1.0))
        assert analysis.current() is notebook and not notebook.closed
        from flask import current_app

        assert current_app._get_current_object() is notebook.app
        assert notebook.models["Data"].query.count() == 1
        with pytest.raises(analysis.JobError, match="Pass the factory instead"):
            with analysis.job(notebook.app):
                pass
        assert not notebook.closed
    finally:
        notebook.close()


def test_a_job_cannot_be_entered_twice_at_once(url):
    job = analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url})
    with job:
        with pytest.raises(analysis.JobError, match="already running"):
            job.__enter__()


def test_job_that_cannot_connect_says_why(tmp_path, caplog):
    bad = f"sqlite:///{tmp_path}/missing/dir/x.sqlite"
    with pytest.raises(analysis.DatabaseUnavailableError, match="Cannot connect"):
        with analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": bad}):
            pass
    assert not has_app_context()
    assert any("could not start after" in r.getMessage() for r in caplog.records)


# -- the example jobs --------------------------------------------------------------------------

DAY = dt.date(2025, 6, 1)


def add_events(app: Flask) -> None:
    """Three users; events on DAY (and around it) with known totals."""
    utc = dt.timezone.utc
    at = dt.datetime.combine(DAY, dt.time(12), tzinfo=utc)
    with app.app_context():
        db.session.add_all(
            User(id=i, email=f"u{i}@example.com", name=f"U{i}", country="DE",
                 signed_up_at=dt.datetime(2024, 1, 1, tzinfo=utc))
            for i in (1, 2, 3)
        )
        db.session.flush()
        db.session.add_all(
            [
                Event(user_id=1, kind="page_view", occurred_at=at, is_mobile=True),
                Event(user_id=1, kind="page_view", occurred_at=at.replace(hour=23, minute=59), is_mobile=False),
                Event(user_id=2, kind="page_view", occurred_at=at.replace(hour=0, minute=0), is_mobile=True),
                Event(user_id=2, kind="purchase", occurred_at=at, amount=12.5),
                Event(user_id=1, kind="purchase", occurred_at=at, amount=0.25),
                # Outside the day, and user 3 never shows up.
                Event(user_id=1, kind="page_view", occurred_at=at - dt.timedelta(days=1)),
                Event(user_id=2, kind="purchase", occurred_at=at + dt.timedelta(days=1), amount=99),
            ]
        )
        db.session.commit()


def summary_rows(url: str) -> list[tuple[t.Any, ...]]:
    return [
        (kind, events, users, mobile, float(amount) if amount is not None else None)
        for kind, events, users, mobile, amount in committed(
            url,
            "SELECT kind, events, users, mobile_events, amount FROM daily_event_summaries"
            " ORDER BY day, kind",
        )
    ]


def test_daily_summary_is_correct_and_idempotent(app, app_env, url):
    add_events(app)
    expected = [("page_view", 3, 2, 2, None), ("purchase", 2, 2, 0, 12.75)]
    assert daily_summary(DAY) == 2
    assert summary_rows(url) == expected
    assert daily_summary(DAY) == 2  # a re-run replaces the day's rows
    assert summary_rows(url) == expected
    assert daily_summary(DAY - dt.timedelta(days=1)) == 1
    assert len(summary_rows(url)) == 3


def test_daily_summary_failure_keeps_the_previous_rows(app, app_env, url, monkeypatch):
    add_events(app)
    daily_summary(DAY)
    before = summary_rows(url)

    def broken(*args: t.Any, **kwargs: t.Any) -> int:
        raise analysis.InsertError("simulated failure after the delete")

    monkeypatch.setattr(analysis.Workbench, "insert_frame", broken)
    assert run(daily_summary, DAY) == 1
    assert summary_rows(url) == before


def test_deactivate_idle_users_is_one_update_and_idempotent(app, app_env, url):
    add_events(app)
    as_of = DAY + dt.timedelta(days=10)
    # User 3 has no events at all; users 1 and 2 were active within 10 days of as_of.
    assert deactivate_idle_users(idle_days=30, as_of=as_of, dry_run=True) == 1
    assert committed(url, "SELECT count(*) FROM users WHERE active = false") == [(0,)]
    assert deactivate_idle_users(idle_days=30, as_of=as_of) == 1
    assert deactivate_idle_users(idle_days=30, as_of=as_of) == 0
    assert committed(url, "SELECT id FROM users WHERE active = false") == [(3,)]
    # Looking back only 5 days (from DAY + 5), users 1 and 2 (last seen DAY and DAY + 1) are idle too.
    assert deactivate_idle_users(idle_days=5, as_of=as_of) == 2
    assert committed(url, "SELECT id FROM users WHERE active = false ORDER BY id") == [(1,), (2,), (3,)]


@pytest.mark.backends("sqlite")
def test_cron_entry_points_exit_status_and_logs(app, url, tmp_path):
    add_events(app)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MY_APP_", "FLASK_")) and k != "DATABASE_URL"}
    env["DATABASE_URL"] = url
    ok = subprocess.run(
        [sys.executable, "-m", "my_app.jobs.daily_summary", "--day", DAY.isoformat()],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "job daily_summary: committed" in ok.stderr
    assert "2 kinds summarised" in ok.stderr
    assert len(summary_rows(url)) == 2

    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/no/such/dir/x.sqlite"
    failed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "my_app", "run-job", "daily_summary", "--day", DAY.isoformat()],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert failed.returncode == 1
    assert "Cannot connect to the database" in failed.stderr
    assert "Traceback" not in failed.stderr  # a known failure is one clear line, not a traceback


@pytest.mark.backends("sqlite")
def test_run_job_command_lists_jobs_without_loading_the_toolkit(tmp_path):
    code = (
        "import sys\n"
        "from my_app import create_app\n"
        "app = create_app({'SQLALCHEMY_DATABASE_URI': 'sqlite://'})\n"
        "assert 'run-job' in app.cli.list_commands(None)\n"
        "result = app.test_cli_runner().invoke(args=['run-job'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(result.output)\n"
        "loaded = sorted(m for m in sys.modules if m == 'analysis' or m.startswith(('analysis.', 'pandas')))\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MY_APP_", "FLASK_")) and k != "DATABASE_URL"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "daily_summary" in result.stdout and "deactivate_idle_users" in result.stdout


@pytest.mark.backends("sqlite")
def test_run_job_command_rejects_unknown_jobs(runner):
    result = runner.invoke(args=["run-job", "nightly-report"])
    assert result.exit_code == 2
    assert "No job named 'nightly-report'. Jobs: daily_summary, deactivate_idle_users." in result.output
