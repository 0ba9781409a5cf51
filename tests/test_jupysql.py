"""JupySQL's magics come connected to the Workbench, in real kernels on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import typing as t

import pytest
import sqlalchemy as sa
from kernels import Kernel
from testing_backends import pg_states, wait_for_no_pg_connections

pytestmark = [pytest.mark.backends("sqlite", "postgresql"), pytest.mark.slow]


@pytest.fixture
def db_url(seeded_app) -> str:
    return seeded_app.config["SQLALCHEMY_DATABASE_URI"]


@pytest.fixture
def kernel(db_url, tmp_path) -> t.Iterator[Kernel]:
    kernel = Kernel(tmp_path, {"FLASK_APP": "my_app", "MY_APP_SQLALCHEMY_DATABASE_URI": db_url})
    try:
        kernel.ok("%load_ext analysis")
        yield kernel
    finally:
        kernel.close()


def outside_count(db_url: str, table: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def assert_nothing_held_open(kernel: Kernel, backend: str, db_url: str) -> None:
    """No transaction is left open: PostgreSQL shows no 'idle in transaction', and another
    process can write to the SQLite file without waiting."""
    if backend == "postgresql":
        states = pg_states(kernel.value("wb.application_name"))
        assert states and all(state == "idle" for state in states), states
    else:
        conn = sqlite3.connect(sa.make_url(db_url).database, timeout=0)
        try:
            conn.execute("UPDATE users SET bio = bio WHERE id = 1")
            conn.commit()
        finally:
            conn.close()


def test_sql_runs_on_the_apps_database_and_returns_a_typed_frame(kernel, backend, db_url):
    kernel.ok("users = %sql SELECT count(*) AS n FROM users")
    assert kernel.value("int(users['n'].iloc[0])") == 20
    kernel.ok("%%sql events_by_kind <<\nSELECT kind, count(*) AS n FROM events GROUP BY kind")
    assert kernel.value("len(events_by_kind)") > 1
    kernel.ok("typed = %sql SELECT id, email, referrer_id FROM users")
    dtypes = kernel.value("{k: str(v) for k, v in typed.dtypes.items()}")
    assert dtypes == {"id": "Int64", "email": "string", "referrer_id": "Int64"}
    assert_nothing_held_open(kernel, backend, db_url)


def test_a_write_through_sql_is_refused_with_our_message_and_changes_nothing(kernel, db_url):
    result = kernel.run("%sql DELETE FROM events")
    assert result.error is not None and result.error["ename"] == "ReadOnlyError"
    assert "writable=True" in result.error["evalue"]
    assert outside_count(db_url, "events") == 100
    kernel.ok("events = %sql SELECT count(*) AS n FROM events")
    assert kernel.value("int(events['n'].iloc[0])") == 100


def test_sql_writes_after_connect_writable_on_the_same_app(kernel, db_url):
    kernel.ok("%sql SELECT count(*) FROM events")  # JupySQL's connection, read-only, is open
    kernel.ok("%connect --writable")
    kernel.ok("%sql DELETE FROM events WHERE id = 1")
    assert outside_count(db_url, "events") == 99
    kernel.ok("%connect --read-only")
    result = kernel.run("%sql DELETE FROM events")
    assert result.error is not None and result.error["ename"] == "ReadOnlyError"
    assert outside_count(db_url, "events") == 99


@pytest.mark.parametrize("autocommit", [True, False])
def test_no_transaction_is_left_open_after_a_sql_cell(kernel, backend, db_url, autocommit):
    kernel.ok(f"%config SqlMagic.autocommit = {autocommit}")
    kernel.ok("%sql SELECT * FROM events")
    assert_nothing_held_open(kernel, backend, db_url)
    kernel.ok("%sqlcmd profile --table users")
    kernel.ok("%sqlplot histogram --table events --column amount")
    assert_nothing_held_open(kernel, backend, db_url)


def test_sql_follows_connect_to_another_app(kernel, tmp_path):
    other = tmp_path / "other.sqlite"
    kernel.ok("%sql SELECT count(*) FROM users")
    spec = f"my_app:create_app({{'SQLALCHEMY_DATABASE_URI': 'sqlite:///{other}'}})"
    kernel.ok(f'%connect "{spec}"')
    # The other app's database has no tables yet: JupySQL now asks it, not the first one.
    result = kernel.run("%sql SELECT count(*) FROM users")
    assert result.error is not None and "no such table" in str(result.error["evalue"])
    tables = kernel.ok("%sqlcmd tables").text
    assert "users" not in tables


@pytest.mark.backends("postgresql")
def test_no_connection_is_left_after_shutdown(kernel):
    kernel.ok("%sql SELECT count(*) FROM users")
    kernel.ok("%sqlcmd tables")
    name = kernel.value("wb.application_name")
    assert pg_states(name)
    kernel.shutdown()
    wait_for_no_pg_connections(name, within=5.0)
