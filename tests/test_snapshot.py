"""wb.snapshot(): every read in the block sees the database as it was when the block began."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from testing_backends import pg_states

import analysis
from analysis.errors import SnapshotError
from my_app.models import Event


@pytest.fixture
def other(database_url: str) -> t.Iterator[sa.Engine]:
    """Another client of the same database (the web app, a cron job), writing as it pleases."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def add_events(engine: sa.Engine, n: int) -> None:
    with engine.begin() as conn:
        first = conn.execute(sa.text("SELECT max(id) FROM events")).scalar_one() + 1
        conn.execute(
            sa.text(
                "INSERT INTO events (id, user_id, kind, occurred_at, is_mobile)"
                " SELECT :id, min(id), 'late', '2030-01-01 00:00:00', :f FROM users"
            ),
            [{"id": first + i, "f": False} for i in range(n)],
        )


def test_reads_inside_a_snapshot_see_none_of_the_commits_made_meanwhile(seeded_app: Flask, other, tmp_path, backend):
    with analysis.connect(seeded_app) as wb:
        with wb.snapshot() as snap:
            before = len(wb.frame(Event))
            add_events(other, 7)
            assert len(wb.frame(Event)) == before
            assert wb.arrow(Event).num_rows == before
            assert sum(len(c) for c in wb.frames(Event, chunksize=30)) == before
            assert wb.frame("SELECT count(*) AS n FROM events")["n"].iloc[0] == before
            assert wb.export_csv(Event, tmp_path / "events.csv").rows == before
            assert wb.export_parquet(Event, tmp_path / "events.parquet").rows == before
            assert wb.session.scalar(sa.select(sa.func.count()).select_from(Event)) == before
            assert bool(snap.exported) == (backend == "postgresql")
        assert len(wb.frame(Event)) == before + 7
        assert not wb.session().in_transaction() or wb.release() == "released"


def test_a_snapshot_leaves_nothing_open(seeded_app: Flask, backend):
    with analysis.connect(seeded_app) as wb:
        with wb.snapshot():
            wb.frame(Event)
        assert not wb.session().in_transaction()
        assert wb.engine.pool.checkedout() == 0
        if backend == "postgresql":
            assert set(pg_states(wb.application_name)) <= {"idle"}
        with pytest.raises(analysis.QueryError):
            with wb.snapshot():
                wb.frame("SELECT nope FROM events")
        assert not wb.session().in_transaction() and wb.engine.pool.checkedout() == 0
        with wb.snapshot():  # and the next one works
            assert len(wb.frame(Event)) == 100



def test_a_snapshot_refuses_pending_writes_and_writes_inside(seeded_app: Flask):
    with analysis.connect(seeded_app, writable=True) as wb:
        wb.session.execute(sa.update(Event).where(Event.id == 1).values(kind="changed"))
        with pytest.raises(SnapshotError, match=r"uncommitted writes.*db.session.commit\(\) or db.session.rollback\(\)"):
            with wb.snapshot():
                pass
        wb.session.rollback()
        with wb.snapshot():
            with pytest.raises(sa.exc.DBAPIError):
                wb.session.execute(sa.update(Event).where(Event.id == 1).values(kind="changed"))
        assert wb.frame(sa.select(Event.kind).where(Event.id == 1))["kind"].iloc[0] != "changed"
        with wb.snapshot():
            with pytest.raises(SnapshotError, match=r"already held"):
                with wb.snapshot():
                    pass
