"""export_parquet(..., partition_by=[...]): hive-partitioned datasets, read back by pyarrow.dataset
and Dask with frame()'s rows and values, atomic as a whole (even under kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import typing as t

import pandas as pd
import pyarrow.dataset as ds
import pytest
from flask import Flask

import analysis
from analysis.errors import ExportError
from my_app.models import Event, User

pytestmark = pytest.mark.backends("sqlite", "postgresql")


@pytest.fixture
def wb(seeded_app: Flask) -> t.Iterator[analysis.Workbench]:
    with analysis.connect(seeded_app) as workbench:
        yield workbench


def values(frame: pd.DataFrame, columns: list[str]) -> list[tuple[t.Any, ...]]:
    frame = frame.sort_values("id", ignore_index=True)
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame[columns].itertuples(index=False)]


# dask.dataframe.read_parquet (2026.8) still passes inplace= to pandas 3.1's reset_index.
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index is deprecated")
def test_a_partitioned_dataset_reads_back_as_frame(wb, tmp_path):
    target = tmp_path / "events"
    result = wb.export_parquet(Event, target, partition_by=["kind"], chunksize=30)
    whole = wb.frame(Event)
    assert result.rows == len(whole) == 100 and result.path == target
    assert sorted(p.name for p in target.iterdir()) == sorted(f"kind={k}" for k in whole["kind"].unique())
    assert all(p.name.startswith("part-") for p in target.rglob("*.parquet"))

    columns = [c for c in whole.columns]
    table = ds.dataset(target, partitioning="hive").to_table().to_pandas()
    assert values(table, columns) == values(whole, columns)
    import dask.dataframe as dd

    assert values(dd.read_parquet(target).compute(), columns) == values(whole, columns)
    import polars as pl

    polars = pl.scan_parquet(target / "**" / "*.parquet", hive_partitioning=True).collect().to_pandas()
    assert sorted(polars["id"]) == sorted(whole["id"])
    # The file columns keep frame()'s types: exact decimals, UTC timestamps, nullable integers.
    schema = ds.dataset(target, partitioning="hive").schema
    assert str(schema.field("amount").type) == "decimal128(10, 2)" and str(schema.field("occurred_at").type) == "timestamp[us, tz=UTC]"


def test_several_levels_enums_and_a_replaced_dataset(wb, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "users"
    wb.export_parquet(Event, target, partition_by=["kind"])
    wb.export_parquet(User, target, partition_by=["plan", "active"])  # replaces the events
    levels = {p.relative_to(target).parts[:2] for p in target.rglob("*.parquet")}
    assert all(a.startswith("plan=") and b.startswith("active=") for a, b in levels)
    back = ds.dataset(target, partitioning="hive").to_table().to_pandas()
    users = wb.frame(User)
    assert sorted(back["id"]) == sorted(users["id"])
    assert back.sort_values("id")["plan"].tolist() == users.sort_values("id")["plan"].astype(str).tolist()
    assert [p.name for p in out.iterdir()] == ["users"]  # nothing hidden left beside


def test_bad_partition_columns_say_what_to_do_and_write_nothing(wb, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "events"
    with pytest.raises(ExportError, match=r"partition_by=: no column named 'nope'; the query's columns are id, user_id"):
        wb.export_parquet(Event, target, partition_by=["nope"])
    with pytest.raises(ExportError, match=r"Cannot partition by 'occurred_at' \(datetime\).*sa.func.date"):
        wb.export_parquet(Event, target, partition_by=["occurred_at"])
    with pytest.raises(analysis.QueryError, match=r"The database rejected the query: .*nope"):
        wb.export_parquet("SELECT id, nope FROM events", target, partition_by=["id"])
    assert list(out.iterdir()) == []


def test_flask_export_partition_by(runner, seeded_app, tmp_path):
    from analysis.cli import export_command

    target = tmp_path / "by-kind"
    result = runner.invoke(export_command, [str(target), "--table", "events", "--partition-by", "kind,is_mobile"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Wrote 100 rows")
    assert ds.dataset(target, partitioning="hive").count_rows() == 100
    assert {p.relative_to(target).parts[1].split("=")[0] for p in target.rglob("*.parquet")} == {"is_mobile"}
    bad = runner.invoke(export_command, [str(tmp_path / "x"), "--table", "events", "--partition-by", "nope"])
    assert bad.exit_code == 1 and "no column named 'nope'" in bad.output and not (tmp_path / "x").exists()


SLOW_EXPORT = textwrap.dedent(
    """
    import sys, time
    import analysis
    import analysis.read.routes as routes
    from my_app import create_app
    from my_app.models import Event

    # A slow database, whatever the route: after each batch of rows (PostgreSQL's driver may send
    # them all in one), the next one, or the end, takes 2 s to come.
    fetch = routes.converted_batches

    def slowly(*args, **kwargs):
        for batch in fetch(*args, **kwargs):
            yield batch
            time.sleep(2)

    routes.converted_batches = slowly
    wb = analysis.connect(create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1]}))
    print("exporting", flush=True)
    wb.export_parquet(Event, sys.argv[2], partition_by=["kind"], chunksize=5, progress=False)
    print("done", flush=True)
    """
)


def test_a_killed_export_leaves_no_dataset_and_the_next_one_cleans_up(wb, tmp_path, database_url):
    target = tmp_path / "events"
    script = tmp_path / "slow_export.py"
    script.write_text(SLOW_EXPORT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MY_APP_", "FLASK_"))}
    process = subprocess.Popen([sys.executable, str(script), database_url, str(target)], env=env, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # pyarrow's dataset writer may hold rows back until the end, so wait for the hidden
        # directory rather than a file in it.
        while not any(tmp_path.glob(".events.*.tmp")):
            assert process.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
        assert process.stdout is not None
        process.stdout.close()
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".events.")]  # hidden, unfinished
    wb.export_parquet(Event, target, partition_by=["kind"])
    assert ds.dataset(target, partitioning="hive").count_rows() == 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".events.")]
