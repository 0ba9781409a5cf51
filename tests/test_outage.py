"""The toolkit through a database outage: a killed connection is a one-line, retryable error.

Connections are killed with ``pg_terminate_backend`` from another connection, over and over
while the work runs, as a server going away would; then the killing stops and the next query,
in the same session, must simply work.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa
from kernels import Kernel
from testing_backends import pg_admin_connection

import analysis

pytestmark = [pytest.mark.backends("postgresql"), pytest.mark.slow]

#: A read that runs for a few seconds on the server, so that it can be killed midway.
SLOW_READ = "SELECT g AS n, pg_sleep(0.002) AS pause FROM generate_series(1, 2500) AS g"


@contextlib.contextmanager
def killing(application_prefix: str, *, after: float = 0.3) -> t.Iterator[list[int]]:
    """Terminate every backend whose application_name starts with the prefix, every 50 ms,
    from ``after`` seconds on, until the block ends. Yields the list of killed pids."""
    killed: list[int] = []
    stop = threading.Event()

    def kill_loop() -> None:
        time.sleep(after)
        with pg_admin_connection() as admin:
            while not stop.is_set():
                rows = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s AND pid <> pg_backend_pid()",
                    (application_prefix.replace("%", r"\%") + "%",),
                ).fetchall()
                for (pid,) in rows:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    killed.append(pid)
                stop.wait(0.05)

    thread = threading.Thread(target=kill_loop, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture
def kernel(seeded_app, tmp_path) -> t.Iterator[Kernel]:
    url = seeded_app.config["SQLALCHEMY_DATABASE_URI"]
    kernel = Kernel(tmp_path, {"FLASK_APP": "my_app", "MY_APP_SQLALCHEMY_DATABASE_URI": url})
    yield kernel
    kernel.close()


def test_a_read_killed_midway_is_one_line_and_the_next_cell_works(kernel, tmp_path):
    kernel.ok("%load_ext analysis")
    name = kernel.value("wb.application_name")
    target = tmp_path / "users.csv"
    target.write_text("the old file\n")

    for cell in (
        f"wb.frame({SLOW_READ!r})",
        f"for chunk in wb.frames({SLOW_READ!r}, chunksize=100): pass",
        f"wb.export_csv({SLOW_READ!r}, {str(target)!r}, progress=False)",
    ):
        with killing(name) as killed:
            result = kernel.run(cell, timeout=120)
        assert killed, "nothing was killed: the read ended before the outage began"
        assert result.error is not None, cell
        assert result.error["ename"] == "DatabaseUnavailableError"
        # The cell shows the message (and how to see more), not a traceback through the toolkit.
        shown = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in result.error["traceback"] if line.strip()]
        assert shown == [
            "An exception has occurred, use %tb to see the full traceback.",
            "DatabaseUnavailableError: " + result.error["evalue"],
        ]
        assert result.error["evalue"].startswith("The database connection was lost (")
        assert "\n" not in result.error["evalue"]
        assert "run it again" in result.error["evalue"]
        # Same session, no reconnecting by hand: the next cell just works.
        assert kernel.value("User.query.count()") == 20
        assert kernel.value("len(wb.frame(User))") == 20

    assert "was left as it was" in result.error["evalue"]
    assert target.read_text() == "the old file\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".csv") == ["users.csv"]


def test_a_job_whose_connection_is_killed_exits_75_with_one_line(seeded_app, caplog):
    url = seeded_app.config["SQLALCHEMY_DATABASE_URI"]

    @analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url}, name="slow-job")
    def slow_job(wb: analysis.Workbench) -> None:
        wb.session.execute(sa.text(SLOW_READ)).all()

    with killing("analysis job my_app"):
        status = analysis.jobs.run(slow_job)
    assert status == analysis.jobs.EX_TEMPFAIL
    failure = [r for r in caplog.records if r.name == "analysis.jobs" and r.getMessage().startswith("job failed")]
    assert len(failure) == 1 and failure[0].exc_info is None  # one line, no traceback
    message = failure[0].getMessage()
    assert "The database connection was lost" in message and "rolled back" in message and "\n" not in message
    # And once the database answers again, the same job runs to the end.
    assert analysis.jobs.run(slow_job) == 0


def test_frame_outside_a_kernel_raises_database_unavailable_and_recovers(seeded_app):
    with analysis.connect(seeded_app) as wb:
        with killing(wb.application_name):
            with pytest.raises(analysis.DatabaseUnavailableError, match=r"^The database connection was lost \(") as info:
                wb.frame(SLOW_READ)
        assert info.value.__cause__ is not None
        assert len(wb.frame("SELECT 1 AS one")) == 1
        wb.release()
        assert wb.session.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == 20

