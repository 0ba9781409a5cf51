"""Benchmark: frame() at every size, against pd.read_sql, connectorx and in-process ADBC, on
SQLite, PostgreSQL and MariaDB; the first query after connect; the stop button.

    .venv/bin/python -m bench.latency                      # 1, 1,000, 100,000 rows; all backends
    .venv/bin/python -m bench.latency --sizes 1,1000,100000,1000000 --write-readme

The 10-column table of bench/frames.py (``bench_rows``, 1,000,000 rows; MariaDB: database
``bench_frames_1000000``), read with ``WHERE id = 7`` (1 row) or ``WHERE id <= N``. Each
(backend, size, method) runs in a fresh process; at up to 1,000 rows it is the median of 30
calls after one warm-up call (what a notebook does all day), at larger sizes the median of
``--repeat`` processes of one call. Methods:

* ``pd.read_sql``: ``pd.read_sql(select, db.engine)`` on the app's own pooled engine;
* ``Workbench.frame``: ``analysis.connect(app).frame(select)`` (a default install);
* ``connectorx``: ``connectorx.read_sql(url, sql)`` to pandas (a new connection per call);
* ``ADBC``: an in-process ADBC connection held open, ``fetch_arrow_table().to_pandas()``
  (SQLite, PostgreSQL).

Also measured, in fresh processes: ``connect()`` and the first one-row ``frame()`` after it
(pandas and pyarrow imported first, as in a notebook);
and the stop button: SIGINT one second into ``frame()`` of a 30-second statement, seconds
until the KeyboardInterrupt. ``--write-readme`` puts the results into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import typing as t

import sqlalchemy as sa

from bench import common, frames
from bench.common import ROOT

BACKENDS = ("sqlite", "postgresql", "mysql")
METHODS = ("pd.read_sql", "Workbench.frame", "connectorx", "ADBC")
OURS = "Workbench.frame"
ROWS = 1_000_000
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
SLOW = {"postgresql": "SELECT pg_sleep(30) AS x", "mysql": "SELECT SLEEP(30) AS x",
        "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000)"
                  " SELECT count(*) AS x FROM c"}
BEGIN, END = "<!-- latency:begin -->", "<!-- latency:end -->"


def database_url(backend: str) -> str:
    if backend == "mysql":
        return f"{MYSQL_URL}/bench_frames_{ROWS}?charset=utf8mb4"
    return frames.database_url(backend, ROWS)


def prepare(backend: str) -> None:
    if backend != "mysql":
        frames.prepare(backend, ROWS)
        return
    engine = sa.create_engine(MYSQL_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS bench_frames_{ROWS}")
    engine.dispose()
    app = frames.make_app(database_url(backend))
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        if sa.inspect(db.engine).has_table("bench_rows"):
            with db.engine.connect() as conn:
                if conn.execute(sa.text("SELECT count(*) FROM bench_rows")).scalar_one() == ROWS:
                    return
            db.drop_all()
        print(f"creating the {ROWS:,}-row table on MariaDB...", file=sys.stderr, flush=True)
        db.create_all()
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            batch: list[tuple[t.Any, ...]] = []
            sql = "INSERT INTO bench_rows VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
            for row in frames.generate(ROWS):
                batch.append((*row[:6], row[6].replace(tzinfo=None), *row[7:]))
                if len(batch) == 20_000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
            raw.commit()
        finally:
            raw.close()


def where(rows: int) -> str:
    return "id = 7" if rows == 1 else f"id <= {rows}"


# -- one measurement, in a child process --------------------------------------------------------


def child(kind: str, backend: str, method: str, rows: int, calls: int) -> dict[str, t.Any]:
    url = database_url(backend)
    if kind == "first":
        started = time.perf_counter()
        import pandas  # noqa: F401  a notebook has pandas and pyarrow loaded before it connects
        import pyarrow  # noqa: F401

        import analysis

        app = frames.make_app(url)
        Row = app.extensions["bench_model"]
        opened = time.perf_counter()
        wb = analysis.connect(app)
        connected = time.perf_counter()
        wb.frame(sa.select(Row).where(Row.id == 7), progress=False)
        return {"connect": connected - opened, "first": time.perf_counter() - connected, "imports": opened - started}
    if kind == "interrupt":
        import signal
        import threading

        import analysis

        # A process started in the background inherits SIGINT ignored; a kernel has Python's handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        wb = analysis.connect(frames.make_app(url))
        wb.frame("SELECT 1 AS x")
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        started = time.perf_counter()
        try:
            wb.frame(SLOW[backend])
        except KeyboardInterrupt:
            return {"seconds": time.perf_counter() - started - 1.0}
        return {"error": "the statement was not interrupted"}

    import pandas as pd

    app = frames.make_app(url)
    Row = app.extensions["bench_model"]
    statement = sa.select(Row).where(sa.text(where(rows)))
    sql = f"SELECT {', '.join(c.name for c in Row.__table__.columns)} FROM bench_rows WHERE {where(rows)}"
    run: t.Callable[[], t.Any]
    if method == "pd.read_sql":
        ctx = app.app_context()
        ctx.push()
        engine = app.extensions["sqlalchemy"].engine
        run = lambda: pd.read_sql(statement, engine)  # noqa: E731
    elif method == OURS:
        import analysis

        wb = analysis.connect(app)
        run = lambda: wb.frame(statement, progress=False)  # noqa: E731
    elif method == "connectorx":
        import connectorx as cx

        plain = sa.make_url(url)
        if backend == "sqlite":
            cx_url = f"sqlite://{plain.database}"
        elif backend == "mysql":
            cx_url = plain.set(drivername="mysql", query={}).render_as_string(hide_password=False)
        else:
            cx_url = f"postgresql://{plain.username}@{plain.host}:{plain.port}/{plain.database}"
            sql = sql.replace("FROM bench_rows", f"FROM {frames.schema_name(ROWS)}.bench_rows")
        run = lambda: cx.read_sql(cx_url, sql)  # noqa: E731
    elif method == "ADBC":
        if backend == "mysql":
            return {"skip": "no ADBC driver for MariaDB on the package index"}
        if backend == "sqlite":
            import adbc_driver_sqlite.dbapi as adbc

            conn = adbc.connect(sa.make_url(url).database)
        else:
            import adbc_driver_postgresql.dbapi as adbc

            conn = adbc.connect(common.PG_URL.replace("+psycopg", ""))
            sql = sql.replace("FROM bench_rows", f"FROM {frames.schema_name(ROWS)}.bench_rows")

        def run() -> t.Any:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetch_arrow_table().to_pandas()
    else:
        raise SystemExit(f"unknown method {method!r}")
    if calls > 1:
        run()
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    assert len(result) == rows, (len(result), rows)
    return {"seconds": statistics.median(seconds)}


def measure(kind: str, backend: str, method: str, rows: int, calls: int, repeat: int) -> dict[str, t.Any]:
    runs = []
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, "-m", "bench.latency", "--child", kind, backend, method, str(rows), str(calls)],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if "seconds" not in runs[0]:
        return runs[0] if len(runs) == 1 else {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return {"seconds": statistics.median(r["seconds"] for r in runs), "runs": [round(r["seconds"], 4) for r in runs]}


# -- report ----------------------------------------------------------------------------------------


def _figure(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def report(results: dict[str, t.Any], command: str) -> str:
    lines = [BEGIN, "## Latency at every size (`bench/latency.py`)", "", "```sh", command, "```", "",
             f"{results['when']}; {results['machine']}. The bench table of bench/frames.py, read with"
             " `WHERE id = 7` or `WHERE id <= N`; up to 1,000 rows the median of 30 calls in one process"
             " after a warm-up call, above it the median of the processes' single calls. `x read_sql` is"
             " frame()'s time over pd.read_sql's in the same run (lower is better)."]
    targets = {1: 1.1, 1000: 1.0, 100_000: 0.5, 1_000_000: 0.5}
    for backend, by_size in results["sizes"].items():
        methods = [m for m in METHODS if any(m in r for r in by_size.values())]
        lines += ["", f"### {backend}", "", "| rows | " + " | ".join(methods) + " | x read_sql | target |",
                  "|---:|" + "---:|" * (len(methods) + 2)]
        for size, by_method in by_size.items():
            cells = []
            for m in methods:
                r = by_method.get(m, {})
                cells.append(_figure(r["seconds"]) if "seconds" in r else "–" if "skip" in r else "failed")
            ours, theirs = by_method.get(OURS, {}), by_method.get("pd.read_sql", {})
            ratio = ours["seconds"] / theirs["seconds"] if "seconds" in ours and "seconds" in theirs else float("nan")
            target = 0.33 if backend == "mysql" and int(size) >= 1_000_000 else targets.get(int(size), float("nan"))
            verdict = "met" if ratio <= target else "NOT met"
            lines.append(f"| {int(size):,} | " + " | ".join(cells) + f" | {ratio:.2f} | <= {target} {verdict} |")
    lines += ["", "### connect() and the first query", "",
              "| backend | connect() | first one-row frame() after it | target <= 100 ms |", "|---|---:|---:|---|"]
    for backend, r in results["first"].items():
        if "first" in r:
            verdict = "met" if r["first"] <= 0.1 else "NOT met"
            lines.append(f"| {backend} | {_figure(r['connect'])} | {_figure(r['first'])} | {verdict} |")
        else:
            lines.append(f"| {backend} | failed: {r.get('error')} | | |")
    lines += ["", "### The stop button", "",
              "SIGINT one second into `frame()` of a 30-second statement (PostgreSQL `pg_sleep`, MariaDB"
              " `SLEEP`, SQLite a recursive count): seconds until KeyboardInterrupt. The kernel tests"
              " (tests/test_interrupts.py) check the same for frames() and the exports, in a real kernel,"
              " and that the database no longer runs the statement.", "",
              "| backend | seconds to KeyboardInterrupt | target < 2 s |", "|---|---:|---|"]
    for backend, r in results["interrupt"].items():
        if "seconds" in r:
            lines.append(f"| {backend} | {r['seconds']:.2f} | {'met' if r['seconds'] < 2 else 'NOT met'} |")
        else:
            lines.append(f"| {backend} | failed: {r.get('error')} | |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv: t.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,1000,100000")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, backend, method, rows, calls = args.child
        print(json.dumps(child(kind, backend, method, int(rows), int(calls))))
        return
    import platform

    import pandas as pd

    results: dict[str, t.Any] = {
        "sizes": {}, "first": {}, "interrupt": {}, "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}, pandas {pd.__version__}",
    }
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for backend in [b for b in args.backends.split(",") if b]:
        try:
            prepare(backend)
        except Exception as e:  # a server that is not there: report it, go on
            results["first"][backend] = {"error": str(e).splitlines()[0]}
            continue
        results["sizes"][backend] = {}
        for rows in sizes:
            small = rows <= 1000
            for method in METHODS:
                print(f"{backend} {rows:,} {method}...", file=sys.stderr, flush=True)
                r = measure("size", backend, method, rows, 30 if small else 1, 1 if small else args.repeat)
                results["sizes"][backend].setdefault(str(rows), {})[method] = r
                print(f"  {r}", file=sys.stderr, flush=True)
        results["first"][backend] = measure("first", backend, OURS, 1, 1, args.repeat)
        results["interrupt"][backend] = measure("interrupt", backend, OURS, 1, 1, 1)
    command = ".venv/bin/python -m bench.latency" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    text = report(results, command)
    print(text)
    if args.write_readme:
        common.write_readme(text, BEGIN, END)


if __name__ == "__main__":
    main()
