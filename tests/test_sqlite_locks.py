"""Fast reads must not disturb the file locks of the app's own SQLite connections.

An in-process ADBC connection (its own bundled SQLite) releases, when it closes, every POSIX
lock this process holds on the database file; another process then deletes the WAL under the
app's connections. The fast route therefore reads SQLite in a helper process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

import analysis
from my_app.db import db
from my_app.models import Data, User

pytestmark = pytest.mark.backends("sqlite")


def test_fast_reads_keep_the_wal_and_the_apps_connections_working(seeded_app, tmp_path):
    path = sa.make_url(seeded_app.config["SQLALCHEMY_DATABASE_URI"]).database
    with analysis.connect(seeded_app, writable=True) as wb:
        assert User.query.count() == 20  # a pooled sqlite3 connection now holds the WAL locks
        wb.release()
        frame = wb.frame(User)
        assert len(frame) == 20
        assert os.path.exists(path + "-wal")
        # Another process opens and closes the database: if our locks had been dropped it
        # would believe itself the last user, checkpoint, and delete the WAL.
        subprocess.run(
            [sys.executable, "-c",
             f"import sqlite3; c = sqlite3.connect({path!r}); c.execute('SELECT count(*) FROM users').fetchone(); c.close()"],
            check=True, timeout=30,
        )
        assert os.path.exists(path + "-wal")
        wb.session.add(Data(value=1.0, source="after"))
        wb.session.commit()
        assert Data.query.filter_by(source="after").count() == 1
    with seeded_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Data)) == 6


def test_fast_reads_do_not_run_the_sqlite_driver_in_this_process(seeded_app):
    with analysis.connect(seeded_app) as wb:
        wb.frame(User)
    assert "adbc_driver_sqlite" not in sys.modules
