"""Benchmark: a DataFrame into a table, Workbench.insert_frame against df.to_sql.

    .venv/bin/python -m bench.insert --write-readme     # 1M and 100k rows, SQLite and PostgreSQL
    .venv/bin/python -m bench.insert --rows 50000 --small-rows 0 --repeat 1   # a quick look

One DataFrame of 10 mixed columns, as a data scientist would hold it (int64 id and user_id,
~12-character text, 10-value category text, float64, bool, timezone-aware ``datetime64[us,
UTC]``, nullable ``Int64`` with 20% NA, float64 money for a ``Numeric(10, 2)`` column, text with
50% missing), generated deterministically and kept as Parquet in ``bench/data``. It goes into an
empty ``bench_inserts`` table (SQLite file in ``bench/data``, PostgreSQL schema
``bench_insert`` of the ``test`` database).

Methods, each in a fresh process, ``--repeat`` times (median reported); the clock covers the
insert and the commit, not start-up, loading the frame or connecting:

* ``df.to_sql``: ``df.to_sql("bench_inserts", db.engine, if_exists="append", index=False)``;
* ``df.to_sql multi``: the same with ``method="multi", chunksize=1000``, the usual advice for
  speed (only at ``--small-rows``: it is far slower);
* ``to_sql COPY recipe`` (PostgreSQL): ``to_sql`` with the ``psql_insert_copy`` callable from
  the pandas documentation (CSV through ``COPY``);
* ``Workbench.insert_frame``: ``analysis.connect(app, writable=True).insert_frame(BenchInsert, df)``
  and ``commit()``.

Every method is checked afterwards: the row count and the stored timestamp of one row.
``--write-readme`` puts the results and the command into bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import sqlalchemy as sa

from bench import common
from bench.common import DATA, PG_URL, ROOT

SCHEMA = "bench_insert"

METHODS = {
    "sqlite": ["df.to_sql", "df.to_sql multi", "Workbench.insert_frame"],
    "postgresql": ["df.to_sql", "df.to_sql multi", "to_sql COPY recipe", "Workbench.insert_frame"],
}
OURS = "Workbench.insert_frame"
BEGIN, END = "<!-- insert:begin -->", "<!-- insert:end -->"


def database_url(backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{DATA / 'insert.sqlite'}"
    return f"{PG_URL}?options=-csearch_path%3D{SCHEMA}"


def make_app(url: str) -> t.Any:
    return common.make_app(url, name="bench_insert", tablename="bench_inserts")


def frame_path(rows: int) -> Path:
    return DATA / f"insert-{rows}.parquet"


def make_frame(rows: int, *, load: bool = True) -> t.Any:
    """The benchmark's DataFrame, generated once per size and kept as Parquet."""
    import numpy as np
    import pandas as pd

    path = frame_path(rows)
    if path.exists():
        return pd.read_parquet(path) if load else None
    rng = np.random.default_rng(20261125)
    ids = np.arange(1, rows + 1)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    frame = pd.DataFrame(
        {
            "id": ids,
            "user_id": rng.integers(1, 50_000, rows),
            "name": pd.Series([f"name_{n:07d}" for n in rng.integers(0, 10**7, rows)], dtype="str"),
            "category": pd.Series([f"category_{n}" for n in rng.integers(0, 10, rows)], dtype="str"),
            "value": rng.random(rows) * 1000,
            "flag": rng.random(rows) < 0.5,
            "created_at": start + pd.to_timedelta(ids * 7_000_000 + rng.integers(0, 10**6, rows), unit="us"),
            "quantity": pd.array(np.where(rng.random(rows) < 0.2, None, rng.integers(0, 1000, rows)), dtype="Int64"),
            "amount": np.round(rng.integers(0, 10**6, rows) / 100, 2),
            "note": pd.Series(
                np.where(rng.random(rows) < 0.5, None, [f"note {n}" for n in rng.integers(0, 10**6, rows)]),
                dtype="str",
            ),
        }
    )
    frame["created_at"] = frame["created_at"].astype("datetime64[us, UTC]")
    DATA.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return pd.read_parquet(path) if load else None


def prepare(backend: str) -> None:
    """Create the schema and an empty table."""
    url = database_url(backend)
    app = make_app(url)
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        if backend == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
        else:
            DATA.mkdir(parents=True, exist_ok=True)
        db.drop_all()
        db.create_all()
        db.engine.dispose()


def psql_insert_copy(table: t.Any, conn: t.Any, keys: list[str], data_iter: t.Any) -> int:
    """The ``method=`` callable the pandas documentation gives for PostgreSQL (psycopg 3)."""
    import csv
    from io import StringIO

    dbapi_conn = conn.connection
    with dbapi_conn.cursor() as cur:
        s_buf = StringIO()
        csv.writer(s_buf).writerows(data_iter)
        s_buf.seek(0)
        columns = ", ".join(f'"{k}"' for k in keys)
        name = f"{table.schema}.{table.name}" if table.schema else table.name
        with cur.copy(f"COPY {name} ({columns}) FROM STDIN WITH CSV") as copy:
            copy.write(s_buf.getvalue())
        return cur.rowcount


# -- one method, in a child process -----------------------------------------------------------


def _peak_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that over ``exec`` from
    the forked parent, so every child would report at least the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(method: str, backend: str, rows: int) -> dict[str, t.Any]:
    import analysis

    frame = make_frame(rows)
    app = make_app(database_url(backend))
    Model = app.extensions["bench_model"]
    db = app.extensions["sqlalchemy"]
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.delete(Model))
        db.engine.dispose()

    if method == OURS:
        wb = analysis.connect(app, writable=True)

        def run() -> None:
            wb.insert_frame(Model, frame)
            wb.session.commit()

    else:
        ctx = app.app_context()
        ctx.push()
        engine = db.engine
        with engine.connect():
            pass
        options: dict[str, t.Any] = {}
        if method == "df.to_sql multi":
            options = {"method": "multi", "chunksize": 1000}
        elif method == "to_sql COPY recipe":
            options = {"method": psql_insert_copy}
        elif method != "df.to_sql":
            raise SystemExit(f"unknown method {method!r}")

        def run() -> None:
            frame.to_sql("bench_inserts", engine, if_exists="append", index=False, **options)

    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    peak = _peak_mb()

    check = sa.create_engine(database_url(backend))
    try:
        with check.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM bench_inserts")).scalar_one()
            stored = conn.execute(sa.text("SELECT created_at FROM bench_inserts WHERE id = 1")).scalar_one()
    finally:
        check.dispose()
    return {"seconds": seconds, "peak_mb": peak, "rows": count, "created_at_1": str(stored),
            "expected_created_at_1": str(frame["created_at"].iloc[0])}


def measure(method: str, backend: str, rows: int, repeat: int) -> dict[str, t.Any]:
    runs = []
    for _ in range(repeat):
        for attempt in (1, 2):  # a shared server may drop a connection now and then: retry once
            proc = subprocess.run(
                [sys.executable, "-m", "bench.insert", "--child", method, "--backend", backend, "--rows", str(rows)],
                cwd=ROOT, capture_output=True, text=True,
            )
            if proc.returncode == 0:
                break
            print(f"  {backend} {method}: attempt {attempt} failed", file=sys.stderr, flush=True)
        else:
            return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  {backend} {method}: {runs[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
    result = dict(runs[0])
    for key in ("seconds", "peak_mb"):
        result[key] = statistics.median(r[key] for r in runs)
    result["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    return result


# -- report -----------------------------------------------------------------------------------


def report(results: dict[str, t.Any], command: str) -> str:
    lines = [BEGIN, "## insert_frame: DataFrames into tables (`bench/insert.py`)", "", "```sh", command, "```", ""]
    lines.append(
        f"10 columns into an empty table, median of {results['repeat']}, each run in a fresh process,"
        f" insert and commit timed; {results['when']}; {results['machine']}. `df.to_sql multi` runs"
        f" only at the smaller size: it takes minutes at the larger one."
    )
    for backend, by_size in results["backends"].items():
        for rows, by_method in by_size.items():
            ours = by_method.get(OURS, {})
            lines += ["", f"### {backend}, {int(rows):,} rows", "",
                      "| method | s | runs (s) | peak RSS MB | x ours | rows written | `created_at` of id 1 as stored |",
                      "|---|---|---|---|---|---|---|"]
            for method, r in by_method.items():
                if "error" in r:
                    lines.append(f"| {method} | failed: {r['error']} | | | | | |")
                    continue
                ratio = r["seconds"] / ours["seconds"] if "seconds" in ours else float("nan")
                lines.append(
                    f"| {method} | {r['seconds']:.2f} | {', '.join(map(str, r['all_seconds']))} | {r['peak_mb']:.0f}"
                    f" | {ratio:.2f} | {r['rows']:,} | `{r['created_at_1']}` |"
                )
            lines.append("")
            if "seconds" in ours and "seconds" in by_method.get("df.to_sql", {}):
                x = by_method["df.to_sql"]["seconds"] / ours["seconds"]
                lines.append(f"- at least as fast as `df.to_sql`: {x:.2f}x its speed -> {'met' if x >= 1 else 'NOT met'}")
                timed = [m for m in by_method if "seconds" in by_method[m]]
                lines.append(f"- fastest here: {min(timed, key=lambda m: by_method[m]['seconds'])}")
            if ours:
                lines.append(f"- the frame's `created_at` of id 1: `{ours.get('expected_created_at_1', '?')}`")
    lines.append(END)
    return "\n".join(lines) + "\n"


def machine() -> str:
    import platform

    import pandas as pd
    import psycopg

    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, pandas {pd.__version__},"
        f" SQLAlchemy {sa.__version__}, psycopg {psycopg.__version__}, SQLite {__import__('sqlite3').sqlite_version}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.insert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for every method but 'multi'")
    parser.add_argument("--small-rows", type=int, default=100_000, help="rows for a second run of every method")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", action="append", choices=list(METHODS))
    parser.add_argument("--method", action="append")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, (args.backend or ["sqlite"])[0], args.rows)))
        return

    backends = args.backend or list(METHODS)
    sizes = [size for size in (args.rows, args.small_rows) if size]
    results: dict[str, t.Any] = {
        "repeat": args.repeat, "backends": {},
        "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
    }
    for backend in backends:
        prepare(backend)
        results["backends"][backend] = {}
        for rows in sizes:
            make_frame(rows, load=False)  # generated and saved once; the children read it
            methods = [
                m for m in METHODS[backend]
                if (not args.method or m in args.method) and (m != "df.to_sql multi" or rows == min(sizes))
            ]
            results["backends"][backend][rows] = {m: measure(m, backend, rows, args.repeat) for m in methods}
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    (results_dir / f"insert-{stamp}.json").write_text(json.dumps(results, indent=2))
    given = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python -m bench.insert", *given])
    text = report(results, command)
    print(text)
    if args.write_readme:
        common.write_readme(text, BEGIN, END)


if __name__ == "__main__":
    main()
