"""The stop button (a kernel interrupt) during a read, in a real kernel, on every backend.

Whatever is running -- ``frame()`` through the Arrow driver or SQLAlchemy, ``frames()``, an
export -- the cell ends with KeyboardInterrupt within 2 s, the database no longer runs the
statement, no transaction is left open, and the next query answers.
"""

from __future__ import annotations

import time
import typing as t

import pytest
from kernels import Kernel
from testing_backends import mysql_admin_connection, pg_admin_connection

# Measured within 2 s: run alone (`serial`), not beside other tests competing for the cores.
pytestmark = [pytest.mark.slow, pytest.mark.serial]

#: A statement that runs for half a minute on each backend (SQLite: counting in a recursive CTE).
SLOW = {
    "postgresql": "SELECT pg_sleep(30) AS x",
    "mysql": "SELECT SLEEP(30) AS x",
    "sqlite": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000)"
        " SELECT count(*) AS x FROM c"
    ),
}
CELLS = {
    "frame": "wb.frame({sql!r})",
    "frames": "for chunk in wb.frames({sql!r}, chunksize=10):\n    pass",
    "export_csv": "wb.export_csv({sql!r}, 'slow.csv')",
    "export_parquet": "wb.export_parquet({sql!r}, 'slow.parquet')",
}


@pytest.fixture
def kernel(seeded_app, tmp_path) -> t.Iterator[Kernel]:
    url = seeded_app.config["SQLALCHEMY_DATABASE_URI"]
    kernel = Kernel(tmp_path, {"FLASK_APP": "my_app", "MY_APP_SQLALCHEMY_DATABASE_URI": url})
    kernel.ok("%load_ext analysis")
    yield kernel
    kernel.close()


def running_statements(backend: str, kernel: Kernel) -> list[str]:
    """What the database still runs for this kernel (its own connections, by name or marker)."""
    if backend == "postgresql":
        name = kernel.value("wb.application_name")
        with pg_admin_connection() as admin:
            rows = admin.execute(
                "SELECT state || ': ' || query FROM pg_stat_activity"
                " WHERE application_name LIKE %s AND state <> 'idle'",
                (name + "%",),
            ).fetchall()
        return [r[0] for r in rows]
    if backend == "mysql":
        conn = mysql_admin_connection()
        try:
            with conn.cursor() as cur:
                # Only this test's database: other tests may sleep at the same time.
                cur.execute(
                    "SELECT INFO FROM information_schema.PROCESSLIST"
                    " WHERE INFO LIKE %s AND DB = %s AND ID <> CONNECTION_ID()",
                    ("%SLEEP(30)%", kernel.value("wb.engine.url.database")),
                )
                return [r[0] for r in cur.fetchall()]
        finally:
            conn.close()
    return []  # SQLite: a statement lives in a process of ours; the next query shows it is gone


def wait_until_gone(backend: str, kernel: Kernel, within: float) -> list[str]:
    deadline = time.monotonic() + within
    while (running := running_statements(backend, kernel)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


@pytest.mark.parametrize("what", list(CELLS))
def test_the_stop_button_cancels_the_statement_in_the_database(kernel, backend, what):
    reply, seconds = kernel.interrupt(CELLS[what].format(sql=SLOW[backend]), after=1.5)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    assert seconds < 2.0
    assert wait_until_gone(backend, kernel, within=0.5) == []
    assert kernel.value("db.session().in_transaction()") is False
    assert kernel.value("int(wb.frame('SELECT 7 AS n').iloc[0, 0])") == 7
    assert kernel.value("User.query.count()") == 20


@pytest.mark.backends("mysql")
@pytest.mark.parametrize("what", ["frame"])
def test_the_stop_button_cancels_a_connectorx_read_on_mariadb(kernel, backend, what):
    # Large results go through connectorx; make this one count as large.
    kernel.ok("import importlib\nimportlib.import_module('analysis.read.mysql').SMALL_RESULT_ROWS = -1")
    test_the_stop_button_cancels_the_statement_in_the_database(kernel, backend, what)
