"""Benchmark: the events table to CSV, export_csv against the floors and the usual pandas way.

    .venv/bin/python -m bench.export --write-readme     # 1M (and 4M) rows, SQLite and PostgreSQL
    .venv/bin/python -m bench.export --rows 100000 --repeat 1 --big-rows 0   # a quick look

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
``--write-readme`` puts the results and the command into bench/README.md.

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

from bench import common
from bench.common import DATA, PG_URL, ROOT

QUERY = "SELECT * FROM events"

METHODS = {
    "sqlite": ["read_sql+to_csv", "sqlite3 -csv", "export_csv"],
    "postgresql": ["read_sql+to_csv", "psycopg COPY", "export_csv"],
}
FLOORS = {"sqlite": "sqlite3 -csv", "postgresql": "psycopg COPY"}
ROUTE = {"sqlite": "ADBC Arrow batches", "postgresql": "COPY"}
BEGIN, END = "<!-- export:begin -->", "<!-- export:end -->"


# -- data --------------------------------------------------------------------------------------


def database_url(backend: str, rows: int) -> str:
    if backend == "sqlite":
        return f"sqlite:///{DATA / f'events-{rows}.sqlite'}"
    return f"{PG_URL}?options=-csearch_path%3Dbench_events_{rows}"


def prepare(backend: str, rows: int) -> str:
    """A database with ``rows`` events (seeded once, then reused)."""
    import sqlalchemy as sa

    from my_app import create_app
    from my_app.db import db
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


#: Peak RSS of the toolkit's helper processes (SQLite's ADBC reader), counted with ours.
HELPER_PEAK_MB = [0.0]


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
        import importlib

        import analysis
        import analysis.export  # noqa: F401  (imports are not what is measured)
        from my_app import create_app
        from my_app.models import Event

        # The modules the route uses (the COPY route needs neither Arrow nor pandas).
        # (ADBC's SQLite driver is not among them: it runs in the toolkit's helper process.)
        for module in ("pyarrow.csv", "pyarrow.compute") if backend == "sqlite" else ():
            importlib.import_module(module)

        from analysis.read import sqlite_helper

        wb = analysis.connect(create_app, config={"SQLALCHEMY_DATABASE_URI": url})
        # Set-up, like connecting: SQLite's ADBC reader process has started.
        if backend == "sqlite":
            sqlite_helper.warm_up(wait=True)
        started = time.perf_counter()
        wb.export_csv(Event, out, progress=False)
        seconds = time.perf_counter() - started
        HELPER_PEAK_MB[0] = common.children_memory_mb("VmHWM")
        wb.close()
        return seconds
    raise ValueError(method)


def measure(method: str, backend: str, url: str, out: Path) -> dict[str, float]:
    """Run ``method`` in a fresh process: seconds, wall seconds, peak RSS in MB, file MB."""
    if out.exists():
        out.unlink()
    helper_mb = 0.0
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
            [sys.executable, "-m", "bench.export", "--child", method, "--backend", backend, "--url", url, "--out", str(out)],
            stdout=subprocess.PIPE, cwd=ROOT,
        )
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        reported = json.loads(output) if process.returncode == 0 else {}
        seconds = reported.get("seconds", float("nan"))
        helper_mb = reported.get("helper_peak_mb", 0.0)
    if process.returncode != 0:
        raise SystemExit(f"{method} on {backend} failed with status {process.returncode}")
    return {
        "seconds": seconds,
        "wall": time.perf_counter() - started,
        "rss_mb": usage.ru_maxrss / 1024 + helper_mb,
        "file_mb": out.stat().st_size / 1e6,
    }


# -- the run -----------------------------------------------------------------------------------------


def in_child(args: list[str]) -> str:
    """Run a step in a process of its own and return its last line of output.

    This process stays small: Linux carries a process's peak RSS over into the programs it
    starts, so a parent that had imported pandas would inflate every measurement.
    """
    done = subprocess.run([sys.executable, "-m", "bench.export", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def median_runs(method: str, backend: str, url: str, out: Path, repeat: int) -> dict[str, float]:
    runs = [measure(method, backend, url, out) for _ in range(repeat)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def machine() -> str:
    import platform

    import pandas as pd
    import pyarrow as pa
    import sqlalchemy as sa

    sqlite3_version = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout.split(" ")[0]
    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, pandas {pd.__version__},"
        f" pyarrow {pa.__version__}, SQLAlchemy {sa.__version__}, sqlite3 shell {sqlite3_version}"
    )


def report(results: dict[str, t.Any], command: str) -> str:
    rows, repeat = results["rows"], results["repeat"]
    lines = [
        BEGIN,
        "## Export to CSV (`bench/export.py`)",
        "",
        f"The `events` table ({rows:,} rows, 9 columns: integers, text, a UTC timestamp, a decimal,"
        " a float, a boolean, NULLs) to a CSV file, each method in a fresh process, median of"
        f" {repeat}. {results['machine']}; {results['when']}.",
        "",
        "```sh",
        "apt-get install sqlite3      # the sqlite3 command-line shell, SQLite's floor",
        command,
        "```",
        "",
        "| backend | method | s | peak RSS MB | file MB | export_csv compared |",
        "|---|---|---:|---:|---:|---|",
    ]
    checks = []
    for backend, methods in results["backends"].items():
        ours = methods["export_csv"]
        floor = methods[FLOORS[backend]]
        for method, r in methods.items():
            if method == "export_csv":
                versus = f"{ours['seconds'] / floor['seconds']:.2f}x the floor"
            elif method == FLOORS[backend]:
                versus = "(the floor)"
            else:
                versus = f"{r['seconds'] / ours['seconds']:.1f}x faster than this"
            name = f"**{method}**" if method == "export_csv" else method
            lines.append(
                f"| {backend} | {name} | {r['seconds']:.2f} | {r['rss_mb']:.0f} | {r['file_mb']:.0f} | {versus} |"
            )
        ratio = ours["seconds"] / floor["seconds"]
        speedup = methods["read_sql+to_csv"]["seconds"] / ours["seconds"]
        checks.append((f"{backend}: export_csv within 1.5x of {FLOORS[backend]}", ratio <= 1.5, f"{ratio:.2f}x"))
        checks.append((f"{backend}: export_csv at least 2x faster than read_sql+to_csv", speedup >= 2, f"{speedup:.1f}x"))
    if results["big"]:
        sizes = sorted({int(n) for by_size in results["big"].values() for n in by_size})
        lines += [
            "",
            "export_csv's peak RSS by table size (the whole process, imports included; one run each):",
            "",
            "| backend | route | " + " | ".join(f"{n:,} rows: MB (s)" for n in sizes) + " |",
            "|---|---|" + "---:|" * len(sizes),
        ]
        for backend, by_size in results["big"].items():
            cells = [f"{by_size[str(n)]['rss_mb']:.0f} ({by_size[str(n)]['seconds']:.1f})" for n in sizes]
            lines.append(f"| {backend} | {ROUTE[backend]} | " + " | ".join(cells) + " |")
            peak = max(by_size[str(n)]["rss_mb"] for n in sizes)
            checks.append((f"{backend}: export_csv peak RSS under 200 MB at every size", peak < 200, f"{peak:.0f} MB"))
    lines += ["", "Targets:", ""]
    lines += [f"- {'✓' if ok else '✗'} {what}: {value}" for what, ok, value in checks]
    lines += [
        "",
        "Seconds are measured inside each process around the export (start-up and imports excluded;",
        "for the `sqlite3` shell, the whole process). The routes: on PostgreSQL `export_csv` runs the",
        "server's `COPY ... TO STDOUT`, wrapping the query so the server spells timestamps, booleans",
        "and Excel-safe text the toolkit's way; on SQLite it reads Arrow batches from the ADBC driver",
        "and writes them with Arrow's CSV writer; the driver runs in a helper process (in this one",
        "it would drop the file locks of the app's own connections), whose start counts as",
        "connecting and whose peak RSS is added to the export's. Both write the same CSV (floats may differ in",
        "spelling only, e.g. `1e-05` or `1e-5`), with `excel_safe` on, as the default is. The floors",
        "write what the database gives: SQLite's shell, timestamps as stored text and booleans as",
        "0/1; PostgreSQL's COPY, `t`/`f` and its own timestamp format; neither neutralises formulas.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: t.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=4_000_000, help="0 to skip the memory check")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--machine", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    if args.child:
        seconds = run_method(args.child, args.backend, args.url, Path(args.out))
        print(json.dumps({"seconds": seconds, "helper_peak_mb": HELPER_PEAK_MB[0]}))
        return
    if args.prepare:
        print(prepare(args.backend, args.rows))
        return
    if args.machine:
        print(machine())
        return

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "sqlite" in backends and shutil.which("sqlite3") is None:
        raise SystemExit("The sqlite3 program is needed for SQLite's floor: apt-get install sqlite3")
    out_dir = DATA / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, t.Any] = {
        "rows": args.rows, "repeat": args.repeat, "backends": {}, "big": {},
        "when": time.strftime("%Y-%m-%d %H:%M"), "machine": in_child(["--machine"]),
    }
    for backend in backends:
        url = in_child(["--prepare", "--backend", backend, "--rows", str(args.rows)])
        results["backends"][backend] = {}
        for method in METHODS[backend]:
            print(f"{backend}: {method}...", file=sys.stderr, flush=True)
            r = median_runs(method, backend, url, out_dir / f"{backend}.csv", args.repeat)
            results["backends"][backend][method] = r
            print(f"  {json.dumps(r)}", file=sys.stderr, flush=True)
    for backend in backends if args.big_rows else []:
        results["big"][backend] = {str(args.rows): results["backends"][backend]["export_csv"]}
        url = in_child(["--prepare", "--backend", backend, "--rows", str(args.big_rows)])
        print(f"{backend}: export_csv over {args.big_rows:,} rows...", file=sys.stderr, flush=True)
        results["big"][backend][str(args.big_rows)] = measure("export_csv", backend, url, out_dir / f"{backend}-big.csv")
    for leftover in out_dir.glob("*.csv"):
        leftover.unlink()

    command = ".venv/bin/python -m bench.export" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    text = report(results, command)
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"export-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    print(text)
    if args.write_readme:
        common.write_readme(text, BEGIN, END)


if __name__ == "__main__":
    main()
