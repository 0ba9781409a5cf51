"""wb.dask(): partitions read by the worker processes of a real distributed.LocalCluster.

One cluster (2 worker processes, 1 thread each) serves the whole module: starting one takes
seconds. Workers rebuild the app from the import string given to analysis.connect(), as they
would on a real cluster.
"""

from __future__ import annotations

import os
import typing as t

import pandas as pd
import pytest
import sqlalchemy as sa
from flask import Flask
from testing_backends import pg_admin_connection

import analysis
from analysis.errors import PartitionError
from my_app.models import Event, User

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client() -> t.Iterator[t.Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


@pytest.fixture
def wb(seeded_app: Flask) -> t.Iterator[analysis.Workbench]:
    """A Workbench opened by import string, as a user opens one; the workers build the same."""
    url = seeded_app.config["SQLALCHEMY_DATABASE_URI"]
    workbench = analysis.connect("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url})
    yield workbench
    workbench.close()


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("id", ignore_index=True)


def worker_connections(client: t.Any) -> list[str]:
    """PostgreSQL connections opened by this cluster's worker processes."""
    pids = client.run(os.getpid).values()
    with pg_admin_connection() as admin:
        names = [name for (name,) in admin.execute("SELECT application_name FROM pg_stat_activity").fetchall()]
    return [name for name in names if any(name and name.startswith("analysis dask-worker") and f"pid={pid}" in name for pid in pids)]


def files_open_on_workers(client: t.Any, path: str) -> list[str]:
    def open_files() -> list[str]:
        import psutil

        return [f.path for f in psutil.Process().open_files() if f.path.startswith(path)]

    return [p for paths in client.run(open_files).values() for p in paths]


@pytest.mark.backends("sqlite", "postgresql")
def test_partitions_read_by_worker_processes_equal_frame(wb, client, backend):
    events = wb.dask(Event, npartitions=4)
    assert events.npartitions == 4
    whole = by_id(wb.frame(Event))
    assert dict(events.dtypes) == dict(whole.dtypes)  # the meta, known before any read
    computed = events.compute()
    pd.testing.assert_frame_equal(by_id(computed), whole)
    sizes = events.map_partitions(len).compute().tolist()
    assert sum(sizes) == len(whole) and all(sizes)  # every row in exactly one partition

    users = wb.dask(User, partition_on="email", npartitions=3)  # text: quantiles in the database
    pd.testing.assert_frame_equal(by_id(users.compute()), by_id(wb.frame(User)))
    assert list(users.compute()["plan"].cat.categories) == ["free", "pro", "team", "enterprise"]


@pytest.mark.backends("sqlite", "postgresql")
def test_a_groupby_on_the_cluster_equals_pandas(wb, client):
    query = sa.select(Event).where(Event.kind != "search")
    got = wb.dask(query, npartitions=3).groupby("kind").agg({"duration_ms": "sum", "id": "count"}).compute()
    frame = wb.frame(query)
    expected = frame.groupby("kind").agg({"duration_ms": "sum", "id": "count"})
    pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), check_dtype=False)
    amounts = wb.dask(sa.select(Event.kind, Event.amount), partition_on="amount", npartitions=2).compute()
    assert amounts["amount"].dropna().sum() == frame["amount"].dropna().sum()


@pytest.mark.backends("sqlite", "postgresql")
def test_no_connection_is_left_after_compute_and_close(wb, client, backend, database_url):
    wb.dask(Event, npartitions=4).compute()
    if backend == "postgresql":
        assert worker_connections(client) == []
    else:
        assert files_open_on_workers(client, database_url.removeprefix("sqlite:///")) == []
    wb.close()
    if backend == "postgresql":
        assert worker_connections(client) == []


@pytest.mark.backends("postgresql")
def test_a_write_attempted_from_a_worker_is_refused(wb, client):
    writes = sa.select(Event.id, sa.func.nextval("events_id_seq", type_=sa.BigInteger).label("n"))
    with pytest.raises(analysis.ReadOnlyError, match=r"read-only"):
        wb.dask(writes, npartitions=2).compute()
    assert wb.frame(sa.select(sa.func.count()).select_from(Event)).iloc[0, 0] == 100


@pytest.mark.backends("sqlite")
def test_the_workers_engines_refuse_writes(wb, client, database_url):
    from analysis.partitions.plan import plan_partitions

    recipe = plan_partitions(
        wb.session, Event, recipe=_recipe(wb), npartitions=2, partition_on=None, params=None,
        binds=dict(wb.db.engines),
    ).specs[0].recipe

    def write(recipe: t.Any) -> str:
        from analysis.partitions import worker

        engine, _ = worker._engine(recipe)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM events"))
        except analysis.ReadOnlyError as e:
            return str(e)
        finally:
            engine.dispose()
        return "written"

    assert "read-only" in client.submit(write, recipe, pure=False).result()
    assert len(wb.frame(Event)) == 100


def _recipe(wb: analysis.Workbench) -> t.Any:
    from analysis.partitions import AppRecipe

    assert wb.app_config is not None
    return AppRecipe(import_string=wb.import_string, config=tuple(sorted(wb.app_config.items())), app_name=wb.app.name)


@pytest.mark.backends("postgresql")
def test_rows_committed_during_a_partitioned_read_in_a_snapshot_appear_in_no_partition(wb, client, database_url):
    other = sa.create_engine(database_url, poolclass=sa.pool.NullPool)

    def insert_late_events(n: int) -> None:
        with other.begin() as conn:
            top = conn.execute(sa.text("SELECT max(id) FROM events")).scalar_one()
            conn.execute(
                sa.text("INSERT INTO events (id, user_id, kind, occurred_at, is_mobile) VALUES (:id, 1, 'late', now(), false)"),
                [{"id": top + 1 + i} for i in range(n)],
            )

    try:
        with wb.snapshot():
            before = wb.frame(Event)
            events = wb.dask(Event, npartitions=4)
            insert_late_events(5)  # after planning: the last range is open-ended, so they would be read
            first = events.partitions[0].compute()
            insert_late_events(5)  # between partitions
            inside = events.compute()
            assert len(inside) == len(before) and "late" not in set(inside["kind"])
            assert len(first) + sum(len(events.partitions[i].compute()) for i in range(1, 4)) == len(before)
        # Outside a snapshot the same graph sees every commit...
        assert (events_now := wb.dask(Event, npartitions=4).compute())["kind"].eq("late").sum() == 10
        assert len(events_now) == len(before) + 10
        # ...and the graph made inside the block refuses to run once the snapshot is gone.
        with pytest.raises(PartitionError, match=r"compute\(\) inside the block"):
            events.compute()
    finally:
        other.dispose()


@pytest.mark.backends("sqlite", "mysql")
def test_backends_without_shared_snapshots_refuse_partitions_in_a_snapshot(seeded_app):
    with analysis.connect(seeded_app) as wb, wb.snapshot():
        with pytest.raises(PartitionError, match=r"cannot share a snapshot.*wb.frame\(\) or wb.frames\(\)"):
            wb.dask(Event, npartitions=2)


@pytest.mark.backends("postgresql")
def test_credentials_never_travel_in_the_task_graph(seeded_app, client, database_url):
    # Trust authentication ignores the password, so a URL with one still connects.
    secret = database_url.replace("postgres@", "postgres:s3cret-pw@")
    with analysis.connect("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": secret}) as wb:
        with pytest.raises(PartitionError, match=r"holds a secret \(SQLALCHEMY_DATABASE_URI\).*url_env="):
            wb.dask(Event)
        client.run(lambda: os.environ.update(ANALYSIS_TEST_WAREHOUSE=secret))
        events = wb.dask(Event, npartitions=2, url_env="ANALYSIS_TEST_WAREHOUSE")
        import cloudpickle

        assert b"s3cret-pw" not in cloudpickle.dumps(events.__dask_graph__())
        pd.testing.assert_frame_equal(by_id(events.compute()), by_id(wb.frame(Event)))
        client.run(lambda: os.environ.pop("ANALYSIS_TEST_WAREHOUSE"))
        with pytest.raises(PartitionError, match=r"ANALYSIS_TEST_WAREHOUSE is not set on this Dask worker"):
            events.compute()
    assert worker_connections(client) == []


@pytest.mark.backends("sqlite")
def test_what_cannot_be_partitioned_says_what_to_do(seeded_app, wb):
    with pytest.raises(PartitionError, match=r"raw SQL has none: pass a select\(\), a model, or sa.text\(sql\).columns"):
        wb.dask("SELECT * FROM events")
    typed = sa.text("SELECT id, kind FROM events").columns(id=sa.Integer, kind=sa.String)
    assert len(wb.dask(typed, partition_on="id", npartitions=2).compute(scheduler="sync")) == 100
    with pytest.raises(PartitionError, match=r"no primary key column to split on: name a column of the query with partition_on="):
        wb.dask(sa.select(Event.kind, Event.amount), npartitions=2)
    with pytest.raises(analysis.QueryError, match=r"partition_on=: no column named 'nope'"):
        wb.dask(Event, partition_on="nope")
    with pytest.raises(PartitionError, match=r"Cannot split on 'is_mobile', a bool column"):
        wb.dask(Event, partition_on="is_mobile", npartitions=2)
    with pytest.raises(ValueError, match=r"npartitions must be a positive number"):
        wb.dask(Event, npartitions=0)
    with analysis.connect(seeded_app) as built:  # an app object: nothing to rebuild it from
        with pytest.raises(PartitionError, match=r"connect with an import string.*url_env="):
            built.dask(Event)
    # The threaded scheduler, in this process, reads with the Workbench's own engine.
    reopened = analysis.connect("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": seeded_app.config["SQLALCHEMY_DATABASE_URI"]})
    try:
        pd.testing.assert_frame_equal(
            by_id(reopened.dask(Event, npartitions=3).compute(scheduler="threads")), by_id(reopened.frame(Event))
        )
    finally:
        reopened.close()


@pytest.mark.backends("sqlite")
def test_a_job_reads_partitions_on_the_cluster(seeded_app, client):
    url = seeded_app.config["SQLALCHEMY_DATABASE_URI"]
    with analysis.job("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url}, writable=False) as wb:
        counts = wb.dask(Event, npartitions=3).groupby("kind")["id"].count().compute()
        assert counts.sum() == 100 and counts.to_dict() == wb.frame(Event)["kind"].value_counts().to_dict()


def test_the_import_string_workers_rebuild_the_app_from():
    from analysis.locate import import_string_for
    from my_app import create_app

    assert import_string_for("my_app:create_app ") == "my_app:create_app"
    assert import_string_for(create_app) == "my_app:create_app"
    assert import_string_for(lambda: create_app()) is None
    assert import_string_for(create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})) is None


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_every_local_scheduler_reads_the_same_rows(wb, scheduler):
    # threads and sync read with the Workbench's engine; processes rebuild the app, as workers do.
    events = wb.dask(Event, npartitions=3).compute(scheduler=scheduler, num_workers=2)
    pd.testing.assert_frame_equal(by_id(events), by_id(wb.frame(Event)))
