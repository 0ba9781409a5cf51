from __future__ import annotations

import datetime as dt
import decimal
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from my_app import create_app
from my_app.config import ConfigError, normalize_database_url
from my_app.db import db
from my_app.models import Data, Event, Plan, User


@pytest.mark.backends("sqlite")
def test_testing_config_is_applied(app):
    assert app.testing
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).testing is False


def test_default_is_a_sqlite_file_in_the_instance_folder():
    app = create_app()
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    assert uri == "sqlite:///" + os.path.join(app.instance_path, "my_app.sqlite")


def test_database_url_environment_variable_is_used(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://someone@db.example/prod")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://someone@db.example/prod"


def test_prefixed_environment_variable_wins_over_database_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://a@h/one")
    monkeypatch.setenv("MY_APP_SQLALCHEMY_DATABASE_URI", "mysql://root@h/two")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "mysql+pymysql://root@h/two"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("mariadb://root@h/d", "mariadb+pymysql://root@h/d"),
        ("sqlite:///x.sqlite", "sqlite:///x.sqlite"),
    ],
)
def test_database_urls_are_normalised_to_installed_drivers(given, expected):
    assert normalize_database_url(given) == expected


def test_unknown_url_scheme_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"Unknown database URL scheme 'oracel'.*sqlite://"):
        create_app({"SQLALCHEMY_DATABASE_URI": "oracel://scott:tiger@h/d"})


def test_garbage_url_is_one_clear_error_without_the_password():
    with pytest.raises(ConfigError, match="Invalid database URL") as info:
        create_app({"SQLALCHEMY_DATABASE_URI": "not a url"})
    assert "DATABASE_URL" in str(info.value)


def test_cli_with_unknown_scheme_prints_one_line_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MY_APP_", "FLASK_"))}
    env["DATABASE_URL"] = "oracel://scott:tiger@h/d"
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "my_app", "init-db"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "Unknown database URL scheme 'oracel'" in result.stderr
    assert "tiger" not in result.stderr


def test_cli_with_unreachable_server_prints_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MY_APP_", "FLASK_"))}
    env["DATABASE_URL"] = "postgresql://postgres:secret@127.0.0.1:1/test?connect_timeout=2"
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "my_app", "init-db"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: Cannot connect to the database at postgresql+psycopg://postgres:***@127.0.0.1:1/test")
    assert "secret" not in result.stderr


@pytest.mark.backends("sqlite")
def test_sqlite_connections_get_wal_foreign_keys_and_busy_timeout(app):
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_engine_uses_pool_pre_ping(app):
    with app.app_context():
        assert db.engine.pool._pre_ping


def test_models_round_trip_every_kind_of_value(app):
    signed_up = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with app.app_context():
        ada = User(email="ada@example.com", name="Ada Łovelace ☃", country="GB", plan=Plan.pro,
                   signed_up_at=signed_up, birth_date=dt.date(1815, 12, 10))
        db.session.add(ada)
        db.session.flush()
        ada.events.append(Event(kind="purchase", amount=decimal.Decimal("4148.50"), duration_ms=None,
                                occurred_at=signed_up))
        db.session.add(Data(value=1.5))
        db.session.commit()
        db.session.expunge_all()

        user = db.session.scalars(sa.select(User)).one()
        assert user.plan is Plan.pro
        assert user.active is True
        assert user.signed_up_at == signed_up
        assert user.signed_up_at.utcoffset() == dt.timedelta(0)
        assert user.birth_date == dt.date(1815, 12, 10)
        assert user.name == "Ada Łovelace ☃"
        event = user.events.one()
        assert event.amount == decimal.Decimal("4148.50")
        assert event.duration_ms is None
        assert event.user is user
        assert db.session.scalars(sa.select(Data)).one().created_at.tzinfo is not None


def test_foreign_keys_are_enforced(app):
    with app.app_context():
        db.session.add(Event(kind="login", user_id=424242))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_naive_datetimes_are_refused(app):
    with app.app_context():
        db.session.add(Data(value=1.0, created_at=dt.datetime(2026, 1, 1)))
        with pytest.raises(sa.exc.StatementError, match="timezone-aware"):
            db.session.commit()
        db.session.rollback()


@pytest.mark.backends("sqlite")
def test_shell_context_exposes_db_and_models(app):
    with app.app_context():
        context = app.make_shell_context()
    assert context["db"] is db
    assert context["User"] is User and context["Event"] is Event and context["Data"] is Data
