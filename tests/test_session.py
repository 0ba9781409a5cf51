"""connect() and the Workbench, in this process (kernels are in test_notebook_session.py)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from testing_backends import pg_states

import analysis
from analysis.errors import (
    AppFactoryError,
    AppNotFoundError,
    DatabaseUnavailableError,
    NotConnectedError,
    ReadOnlyError,
    UncommittedChangesError,
)
from my_app import create_app
from my_app.db import db
from my_app.models import Data, User


@pytest.fixture
def seeded(seeded_app):
    return seeded_app


@pytest.fixture
def workbench(seeded):
    wb = analysis.connect(seeded)
    yield wb
    wb.close()


def outside_count(app: Flask, model: type) -> int:
    """Count rows on a fresh engine, as another process would see them."""
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
    finally:
        engine.dispose()


def test_connect_accepts_app_factory_and_import_strings(database_url, monkeypatch):
    config = {"SQLALCHEMY_DATABASE_URI": database_url}
    with analysis.connect(create_app, config=config) as wb:
        assert wb.app.name == "my_app" and current_app._get_current_object() is wb.app
    with analysis.connect("my_app:create_app", config=config) as wb:
        assert wb.db is db
    monkeypatch.setenv("MY_APP_SQLALCHEMY_DATABASE_URI", database_url)
    with analysis.connect("my_app") as wb:
        assert wb.app.config["SQLALCHEMY_DATABASE_URI"].endswith(database_url.split("/")[-1])
    monkeypatch.setenv("FLASK_APP", "my_app:create_app()")
    with analysis.connect() as wb:
        assert wb.models["User"] is User


@pytest.mark.backends("sqlite")
def test_missing_flask_app_says_how_to_fix():
    with pytest.raises(AppNotFoundError, match=r"FLASK_APP is not set.*connect\('my_app:create_app'\)"):
        analysis.connect()


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module:create_app", r"Cannot import 'no_such_module'.*no such module"),
        ("my_app:create_ap", r"has no attribute 'create_ap'. Did you mean 'create_app'\?"),
        ("my_app:create_app(", r"Cannot parse"),
        ("my_app.models", r"No Flask app or factory found in module 'my_app.models'"),
    ],
)
def test_bad_app_specs_name_the_problem(spec, message):
    with pytest.raises(AppNotFoundError, match=message):
        analysis.connect(spec)


@pytest.mark.backends("sqlite")
def test_a_factory_that_raises_is_reported_with_its_error(tmp_path, monkeypatch):
    (tmp_path / "broken_app.py").write_text(
        "def create_app():\n    raise RuntimeError('SECRET_KEY must be set in production')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AppFactoryError, match="broken_app:create_app raised RuntimeError: SECRET_KEY must be set") as info:
        analysis.connect("broken_app:create_app")
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.backends("sqlite")
def test_unreachable_database_is_one_clear_error():
    from analysis.errors import DatabaseUnavailableError

    config = {"SQLALCHEMY_DATABASE_URI": "postgresql://postgres:pw@127.0.0.1:1/test?connect_timeout=2"}
    with pytest.raises(DatabaseUnavailableError, match=r"Cannot connect to the database at postgresql\+psycopg://postgres:\*\*\*@127.0.0.1:1/test"):
        analysis.connect(create_app, config=config)
    with pytest.raises(NotConnectedError):
        analysis.current()


def test_workbench_exposes_app_db_session_models_and_tables(workbench):
    assert workbench.db is db and workbench.session is db.session
    assert set(workbench.models) >= {"User", "Event", "Data", "ApiKey"}
    assert "User" in workbench._ipython_key_completions_()
    tables = workbench.tables().set_index("table")
    assert tables.loc["users", "rows"] == 20 and tables.loc["events", "rows"] == 100
    assert tables.loc["users", "model"] == "User"
    assert "signed_up_at" in tables.loc["users", "columns"]
    assert str(tables["rows"].dtype) == "Int64"
    assert workbench["User"] is User
    with pytest.raises(KeyError, match="No model named 'Usr'"):
        workbench["Usr"]


@pytest.mark.backends("postgresql")
def test_repr_masks_the_password(seeded):
    url = seeded.config["SQLALCHEMY_DATABASE_URI"].replace("postgres@", "postgres:hunter2@")
    wb = analysis.connect(create_app, config={"SQLALCHEMY_DATABASE_URI": url})
    try:
        assert "hunter2" not in repr(wb) and "***" in repr(wb)
        html = wb._repr_html_()
        assert "hunter2" not in html and "read-only" in html and "users" in html
    finally:
        wb.close()


def test_read_only_by_default_refuses_orm_and_sql_writes(workbench, seeded):
    before = outside_count(seeded, Data)
    workbench.session.add(Data(value=1.0))
    with pytest.raises(ReadOnlyError, match="writable=True"):
        workbench.session.commit()
    workbench.session.rollback()
    with pytest.raises(ReadOnlyError, match="writable=True"):
        workbench.session.execute(sa.text("DELETE FROM data"))
    workbench.session.rollback()
    with pytest.raises(ReadOnlyError):
        with workbench.engine.begin() as conn:
            conn.execute(sa.insert(Data).values(value=2.0, created_at=dt.datetime.now(dt.timezone.utc)))
    assert outside_count(seeded, Data) == before
    # Still usable after the refusals.
    assert User.query.count() == 20


def test_writable_commits_are_visible_outside(seeded):
    with analysis.connect(seeded, writable=True) as wb:
        wb.session.add(Data(value=42.0, source="notebook"))
        wb.session.commit()
    assert outside_count(seeded, Data) == 6


def test_release_ends_read_transactions_but_keeps_objects_usable(workbench):
    user = User.query.order_by(User.id).first()
    session = workbench.session()
    assert session.in_transaction()
    assert workbench.release() == "released"
    assert not session.in_transaction()
    assert user in session and user.email == "user1@example.com"
    assert workbench.release() == "released"  # the refresh above read again
    assert workbench.release() == "idle"


def test_release_keeps_uncommitted_writes_and_reports_them_once(seeded, capsys):
    with analysis.connect(seeded, writable=True) as wb:
        wb.session.add(Data(value=1.0))
        assert wb.release() == "kept"
        assert wb.release() == "kept"
        err = capsys.readouterr().err
        assert err.count("Uncommitted changes kept open: 1 new Data") == 1
        assert "db.session.commit()" in err and "db.session.rollback()" in err
        wb.session.flush()
        assert wb.release() == "kept"
        assert "statements already sent to the database" in capsys.readouterr().err
        wb.session.execute(sa.text("UPDATE users SET name = 'x' WHERE id = 1"))
        wb.session.commit()
        assert wb.release() == "idle"
        User.query.count()
        assert wb.release() == "released"
        wb.session.execute(sa.text("UPDATE users SET name = 'y' WHERE id = 1"))
        assert wb.release() == "kept"
        wb.session.rollback()
    assert outside_count(seeded, Data) == 6


def test_connect_again_replaces_the_previous_workbench(seeded):
    first = analysis.connect(seeded)
    User.query.count()
    # The same app object: the same Workbench, switched to the mode asked for.
    assert analysis.connect(seeded, writable=True) is first and first.writable
    second = analysis.connect(create_app, config={"SQLALCHEMY_DATABASE_URI": seeded.config["SQLALCHEMY_DATABASE_URI"]})
    try:
        assert first.closed and not second.closed and not second.writable
        assert analysis.current() is second
        assert User.query.count() == 20
    finally:
        second.close()
    with pytest.raises(NotConnectedError, match="analysis.connect"):
        analysis.current()


@pytest.mark.backends("sqlite")
def test_a_failed_connect_keeps_the_current_workbench_and_says_so(seeded):
    wb = analysis.connect(seeded)
    try:
        with pytest.raises(AppNotFoundError, match=r"Did you mean 'create_app'\?.*still open and current: <Workbench"):
            analysis.connect("my_app:create_ap")
        with pytest.raises(DatabaseUnavailableError, match="still open and current"):
            analysis.connect(create_app, config={"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/x"})
        assert analysis.current() is wb and not wb.closed
        assert User.query.count() == 20
    finally:
        wb.close()


@pytest.mark.backends("sqlite")
def test_reconnecting_with_uncommitted_writes_refuses_and_keeps_them(seeded):
    wb = analysis.connect(seeded, writable=True)
    try:
        wb.session.add(Data(value=3.0))
        for again in (
            lambda: analysis.connect(seeded),
            lambda: analysis.connect(create_app, config={"SQLALCHEMY_DATABASE_URI": seeded.config["SQLALCHEMY_DATABASE_URI"]}),
        ):
            with pytest.raises(UncommittedChangesError, match=r"1 new Data.*commit\(\).*rollback\(\)"):
                again()
        assert wb.writable and analysis.current() is wb
        wb.session.commit()
        assert outside_count(seeded, Data) == 6
    finally:
        wb.close()


def test_close_is_idempotent_and_restores_the_engine(seeded):
    wb = analysis.connect(seeded)
    User.query.count()
    wb.close()
    wb.close()
    with pytest.raises(analysis.ConnectionClosedError):
        _ = wb.session
    # The app's own engine is no longer read-only once the Workbench is gone.
    with seeded.app_context():
        db.session.add(Data(value=3.0))
        db.session.commit()


@pytest.mark.backends("postgresql")
def test_postgresql_connections_carry_an_application_name_and_close(workbench):
    User.query.count()
    name = workbench.application_name
    assert name.startswith("analysis notebook my_app pid=")
    assert pg_states(name) == ["idle in transaction"]
    workbench.release()
    assert pg_states(name) == ["idle"]
    # The Arrow driver's connection is kept for the next read, outside any transaction.
    workbench.frame(User)
    workbench.frame(User)
    assert pg_states(name + " (fast)") == ["idle"]
    workbench.close()
    assert pg_states(name) == []
    assert pg_states(name + " (fast)") == []


@pytest.mark.backends("sqlite", "postgresql")
def test_plain_scripts_connect_and_clean_up_at_exit(seeded, tmp_path):
    script = textwrap.dedent(
        """
        import atexit, analysis
        from flask.signals import appcontext_popped
        popped = []
        # Registered first, so it runs after the toolkit's own atexit cleanup.
        atexit.register(lambda: print("closed" if wb.closed and popped == ["my_app"] else "LEAKED"))
        wb = analysis.connect("my_app:create_app")
        appcontext_popped.connect(lambda app, **kw: popped.append(app.name), weak=False)
        print(wb.models["User"].query.count())
        """
    )
    env = {"PATH": "/usr/bin:/bin", "MY_APP_SQLALCHEMY_DATABASE_URI": seeded.config["SQLALCHEMY_DATABASE_URI"]}
    if "PYTHONPATH" in os.environ:  # make test-lowest puts Flask-SQLAlchemy 3.1 there
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["20", "closed"]
