"""Benchmark: the events table to CSV, export_csv against the floors and the usual pandas way.

    .venv/bin/python bench/export.py                      # 1M rows, SQLite and PostgreSQL
    .venv/bin/python bench/export.py --rows 100000 --repeat 1 --big-rows 0   # a quick look

Methods, each run in a fresh process, ``--repeat`` times (median reported):

* ``read_sql+to_csv``: ``pd.read_sql("SELECT * FROM events", engine).to_csv(path)``, what
  most notebooks do;
* ``sqlite3 -csv``: the ``sqlite3`` command-line shell, SQLite's floor (needs the ``sqlite3``
  program: ``apt-get install sqlite3``);
* ``psycopg COPY``: ``COPY (SELECT * FROM events) TO STDOUT WITH (FORMAT csv, HEADER)`` through
  psycopg into a file, PostgreSQL's floor;
* ``export_csv``: ``analysis.connect(...).export_csv(Event, path)``.

Seconds are measured inside each process around the export itself (interpreter start-up and
imports excluded; for the ``sqlite3`` shell, the whole process). Peak RSS is the whole
process's (``ru_maxrss``), imports included. ``--big-rows`` (default 4M) repeats export_csv on
a bigger table to show that its memory does not grow with the row count.

The demo data comes from ``my_app``'s seeder (10 columns: ints, text, a timestamp, a decimal,
floats, booleans, NULLs) and is kept in ``bench/data`` (SQLite) and in PostgreSQL schemas
``bench_events_<rows>`` of the ``test`` database, so later runs start at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
QUERY = "SELECT * FROM events"

METHODS = {
    "sqlite": ["read_sql+to_csv", "sqlite3 -csv", "export_csv"],
    "postgresql": ["read_sql+to_csv", "psycopg COPY", "export_csv"],
}
FLOORS = {"sqlite": "sqlite3 -csv", "postgresql": "psycopg COPY"}


# -- data --------------------------------------------------------------------------------------


def database_url(backend: str, rows: int) -> str:
    if backend == "sqlite":
        return f"sqlite:///{DATA / f'events-{rows}.sqlite'}"
    return f"{PG_URL}?options=-csearch_path%3Dbench_events_{rows}"


def prepare(backend: str, rows: int) -> str:
    """A database with ``rows`` events (seeded once, then reused)."""
    import sqlalchemy as sa

    from my_app import create_app
    from my_app.extensions import db
    from my_app.seed import seed

    url = database_url(backend, rows)
    if backend == "sqlite":
        DATA.mkdir(parents=True, exist_ok=True)
    else:
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS bench_events_{rows}")
        engine.dispose()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        have = db.session.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
        db.session.rollback()
        if have != rows:
            print(f"seeding {rows:,} events on {backend} (once)...", file=sys.stderr, flush=True)
            with db.engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM events")
                conn.exec_driver_sql("DELETE FROM data")
                conn.exec_driver_sql("UPDATE users SET referrer_id = NULL")
                conn.exec_driver_sql("DELETE FROM users")
            seed(users=10_000, events=rows, data_points=0)
            if backend == "postgresql":
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("VACUUM ANALYZE events")
        for engine in db.engines.values():
            engine.dispose()
    return url


# -- one method, in a child process --------------------------------------------------------------


def run_method(method: str, backend: str, url: str, out: Path) -> float:
    """Run one export in this process; return its seconds."""
    if method == "read_sql+to_csv":
        import pandas as pd
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        started = time.perf_counter()
        pd.read_sql(QUERY, engine).to_csv(out, index=False)
        return time.perf_counter() - started
    if method == "psycopg COPY":
        import psycopg
        import sqlalchemy as sa

        parsed = sa.make_url(url)
        started = time.perf_counter()
        with psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database,
            options=parsed.query["options"].replace("-csearch_path%3D", "-csearch_path="),
        ) as conn, conn.cursor() as cur, open(out, "wb") as f:
            with cur.copy(f"COPY ({QUERY}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                for block in copy:
                    f.write(block)
        return time.perf_counter() - started
    if method == "export_csv":
        import analysis
        from my_app import create_app
        from my_app.models import Event

        wb = analysis.connect(create_app, config={"SQLALCHEMY_DATABASE_URI": url})
        started = time.perf_counter()
        wb.export_csv(Event, out, progress=False)
        seconds = time.perf_counter() - started
        wb.close()
        return seconds
    raise ValueError(method)


def measure(method: str, backend: str, url: str, out: Path) -> dict[str, float]:
    """Run ``method`` in a fresh process: seconds, wall seconds, peak RSS in MB, file MB."""
    if out.exists():
        out.unlink()
    started = time.perf_counter()
    if method == "sqlite3 -csv":
        path = url.removeprefix("sqlite:///")
        with open(out, "wb") as f:
            process = subprocess.Popen(["sqlite3", "-header", "-csv", path, QUERY], stdout=f)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
    else:
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", method, "--backend", backend, "--url", url, "--out", str(out)],
            stdout=subprocess.PIPE, cwd=ROOT,
        )
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = json.loads(output)["seconds"] if process.returncode == 0 else float("nan")
    if process.returncode != 0:
        raise SystemExit(f"{method} on {backend} failed with status {process.returncode}")
    return {
        "seconds": seconds,
        "wall": time.perf_counter() - started,
        "rss_mb": usage.ru_maxrss / 1024,
        "file_mb": out.stat().st_size / 1e6,
    }


# -- the run -----------------------------------------------------------------------------------------


def median_runs(method: str, backend: str, url: str, out: Path, repeat: int) -> dict[str, float]:
    runs = [measure(method, backend, url, out) for _ in range(repeat)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main(argv: t.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=4_000_000, help="0 to skip the memory check")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    if args.child:
        print(json.dumps({"seconds": run_method(args.child, args.backend, args.url, Path(args.out))}))
        return

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "sqlite" in backends and shutil.which("sqlite3") is None:
        raise SystemExit("The sqlite3 program is needed for SQLite's floor: apt-get install sqlite3")
    out_dir = DATA / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], dict[str, float]] = {}
    for backend in backends:
        url = prepare(backend, args.rows)
        for method in METHODS[backend]:
            print(f"{backend:10} {method:16} ...", file=sys.stderr, flush=True)
            results[backend, method] = median_runs(method, backend, url, out_dir / f"{backend}.csv", args.repeat)
    big: dict[str, dict[str, float]] = {}
    if args.big_rows:
        for backend in backends:
            url = prepare(backend, args.big_rows)
            print(f"{backend:10} export_csv {args.big_rows:,} rows ...", file=sys.stderr, flush=True)
            big[backend] = median_runs("export_csv", backend, url, out_dir / f"{backend}-big.csv", args.repeat)

    print(f"\nCSV of the events table, {args.rows:,} rows; median of {args.repeat}, each run in a fresh process.\n")
    print("| backend | method | s | s incl. start-up | peak RSS MB | file MB | export_csv is |")
    print("|---|---|---:|---:|---:|---:|---|")
    for backend in backends:
        ours = results[backend, "export_csv"]["seconds"]
        for method in METHODS[backend]:
            r = results[backend, method]
            if method == "export_csv":
                versus = f"{ours / results[backend, FLOORS[backend]]['seconds']:.2f}x the floor"
            else:
                versus = f"{r['seconds'] / ours:.2f}x faster" if r["seconds"] > ours else f"{ours / r['seconds']:.2f}x slower"
            print(
                f"| {backend} | {method} | {r['seconds']:.2f} | {r['wall']:.2f} | {r['rss_mb']:.0f}"
                f" | {r['file_mb']:.0f} | {'' if method == 'export_csv' else versus}{versus if method == 'export_csv' else ''} |"
            )
    if big:
        print(f"\nexport_csv peak RSS by table size (MB):\n")
        print(f"| backend | {args.rows:,} rows | {args.big_rows:,} rows | s at {args.big_rows:,} |")
        print("|---|---:|---:|---:|")
        for backend, r in big.items():
            print(f"| {backend} | {results[backend, 'export_csv']['rss_mb']:.0f} | {r['rss_mb']:.0f} | {r['seconds']:.2f} |")


if __name__ == "__main__":
    main()
