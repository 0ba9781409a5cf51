"""The notebook session, in real IPython kernels (jupyter_client), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
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
    yield kernel
    kernel.close()


def outside_count(db_url: str, table: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def test_context_and_session_survive_every_cell(kernel):
    kernel.ok("%load_ext analysis")
    assert kernel.value("User.query.count()") == 20
    first = kernel.value("id(db.session())")
    kernel.ok("import asyncio")
    assert kernel.value("await asyncio.sleep(0.05)\nUser.query.filter_by(id=1).one().email") == "user1@example.com"
    assert kernel.value("from flask import current_app\ncurrent_app.name") == "my_app"
    assert kernel.value("await asyncio.sleep(0)\nid(db.session())") == first
    assert kernel.value("db.session.execute(db.select(Event).limit(3)).all().__len__()") == 3
    assert kernel.value("id(db.session())") == first
    names = kernel.value("sorted(k for k in ('app', 'db', 'User', 'Event', 'Data', 'wb') if k in globals())")
    assert names == sorted(["app", "db", "User", "Event", "Data", "wb"])


def test_connect_after_an_await_still_holds_in_later_cells(kernel):
    kernel.ok("import asyncio, analysis\nawait asyncio.sleep(0.01)\nwb = analysis.connect('my_app:create_app')")
    assert kernel.value("wb.models['User'].query.count()") == 20
    assert kernel.value("await asyncio.sleep(0.01)\nwb.models['Data'].query.count()") == 5


def test_reads_leave_no_transaction_open_between_cells(kernel, backend, db_url):
    kernel.ok("%load_ext analysis")
    kernel.ok("u = User.query.order_by(User.id).first()\nn = Event.query.count()")
    if backend == "postgresql":
        name = kernel.value("wb.application_name")
        assert pg_states(name) == ["idle"]
    else:
        # Another process can write to the file while the kernel sits idle after a query.
        path = sa.make_url(db_url).database
        conn = sqlite3.connect(path, timeout=0)
        try:
            conn.execute("INSERT INTO data (value, source, created_at) VALUES (1.0, 'other', '2026-01-01 00:00:00.000000')")
            conn.commit()
        finally:
            conn.close()
    # ORM objects from earlier cells remain attached and reload on access.
    assert kernel.value("(u in db.session, u.email)") == (True, "user1@example.com")
    assert kernel.value("Data.query.count()") == (5 if backend == "postgresql" else 6)


def test_read_only_refuses_writes_and_writes_nothing(kernel, db_url):
    kernel.ok("%load_ext analysis")
    result = kernel.run("db.session.add(Data(value=1.0))\ndb.session.commit()")
    assert result.error["ename"] == "ReadOnlyError"
    assert "writable=True" in result.error["evalue"]
    result = kernel.run("db.session.rollback()\ndb.session.execute(db.text('DELETE FROM events'))")
    assert result.error["ename"] == "ReadOnlyError"
    kernel.ok("db.session.rollback()")
    assert outside_count(db_url, "data") == 5 and outside_count(db_url, "events") == 100


def test_writable_commit_is_visible_to_another_process(kernel, backend, db_url):
    kernel.ok("%load_ext analysis")
    kernel.ok("%connect --writable my_app:create_app")
    pending = kernel.ok("db.session.add(Data(value=7.0, source='cell'))")
    assert "Uncommitted changes kept open: 1 new Data" in pending.stderr
    quiet = kernel.ok("1 + 1")
    assert "Uncommitted" not in quiet.stderr  # told once
    if backend == "postgresql":
        kernel.ok("db.session.flush()")
        assert pg_states(kernel.value("wb.application_name")) == ["idle in transaction"]
    assert outside_count(db_url, "data") == 5
    kernel.ok("db.session.commit()")
    assert outside_count(db_url, "data") == 6
    if backend == "postgresql":
        assert pg_states(kernel.value("wb.application_name")) == ["idle"]


def test_interrupted_cell_leaves_the_session_usable_and_no_transaction(kernel, backend):
    kernel.ok("%load_ext analysis\nimport time")
    long_cell = (
        "for row in db.session.execute(db.select(Event)).yield_per(1):\n"
        "    time.sleep(0.05)\n"
    )
    if backend == "postgresql":
        long_cell = "db.session.execute(db.text('SELECT pg_sleep(30)'))"
    kernel.client.execute(long_cell)
    time.sleep(1.5)
    kernel.manager.interrupt_kernel()
    deadline = time.monotonic() + 20
    while True:
        msg = kernel.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["msg_type"] == "execute_reply":
            break
    assert msg["content"]["status"] == "error" and msg["content"]["ename"] == "KeyboardInterrupt"
    assert kernel.value("db.session().in_transaction()") is False
    assert kernel.value("User.query.count()") == 20
    if backend == "postgresql":
        assert pg_states(kernel.value("wb.application_name")) == ["idle"]


@pytest.mark.serial  # measured within 2 s: run alone, not beside tests competing for the cores
@pytest.mark.backends("postgresql")
@pytest.mark.parametrize("how", ["shutdown", "restart"])
def test_graceful_shutdown_or_restart_closes_connections_within_2s(kernel, how):
    kernel.ok("%load_ext analysis")
    kernel.ok("User.query.count()\nwb.models['Event'].query.count()\nwb.frame(Event)")
    name = kernel.value("wb.application_name")
    assert pg_states(name) == ["idle"]
    assert pg_states(name + " (fast)") == ["idle"]  # the Arrow driver's kept connection
    started = time.monotonic()
    kernel.shutdown(restart=(how == "restart"))
    wait_for_no_pg_connections(name, within=2.0 - (time.monotonic() - started) + 0.5)
    wait_for_no_pg_connections(name + " (fast)", within=2.0 - (time.monotonic() - started) + 0.5)
    assert time.monotonic() - started < 2.5


@pytest.mark.backends("postgresql")
def test_killed_kernel_connections_close_within_10s(kernel):
    kernel.ok("%load_ext analysis")
    kernel.ok("User.query.count()\nwb.frame(Event)")
    name = kernel.value("wb.application_name")
    assert pg_states(name) and pg_states(name + " (fast)")
    kernel.kill()
    wait_for_no_pg_connections(name, within=10.0)
    wait_for_no_pg_connections(name + " (fast)", within=10.0)


def _pg_restart_command() -> list[str] | None:
    if not shutil.which("pg_ctlcluster") or not os.path.isdir("/etc/postgresql"):
        return None
    versions = os.listdir("/etc/postgresql")
    if len(versions) != 1:
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "restart"]


@pytest.mark.serial  # restarts the shared PostgreSQL server: nothing else may run meanwhile
@pytest.mark.backends("postgresql")
def test_query_after_the_server_restarted_succeeds(kernel):
    command = _pg_restart_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("pg_ctlcluster is needed to restart the PostgreSQL server in CI")
        pytest.skip("cannot restart the local PostgreSQL server (no pg_ctlcluster)")
    kernel.ok("%load_ext analysis")
    assert kernel.value("User.query.count()") == 20
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    for _ in range(100):
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0:
            break
        time.sleep(0.1)
    assert kernel.value("User.query.count()") == 20
    assert kernel.value("Event.query.count()") == 100


@pytest.mark.backends("sqlite")
def test_connect_errors_are_one_clear_message(tmp_path, db_url):
    kernel = Kernel(tmp_path, {})
    try:
        missing = kernel.run("import analysis\nanalysis.connect()")
        assert missing.error["ename"] == "AppNotFoundError"
        assert "FLASK_APP is not set" in missing.error["evalue"]
        hint = kernel.ok("%load_ext analysis")
        assert "%connect my_app:create_app" in hint.stdout
        bad = kernel.run("%connect no_such_module:create_app")
        assert bad.error["ename"] == "UsageError"
        assert "Cannot import 'no_such_module'" in bad.error["evalue"]
        assert len(bad.error["traceback"]) <= 2  # a message, not a traceback
        (tmp_path / "raising_app.py").write_text("def create_app():\n    raise ValueError('no SECRET_KEY')\n")
        raising = kernel.run("analysis.connect('raising_app:create_app')")
        assert raising.error["ename"] == "AppFactoryError"
        assert "raising_app:create_app raised ValueError: no SECRET_KEY" in raising.error["evalue"]
    finally:
        kernel.close()
