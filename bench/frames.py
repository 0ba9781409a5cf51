"""Benchmark: a query into a pandas DataFrame, Workbench.frame against what users reach for.

    .venv/bin/python -m bench.frames                       # 1M rows, SQLite and PostgreSQL
    .venv/bin/python -m bench.frames --rows 100000 --repeat 1 --frames-rows 0   # a quick look

One table, ``bench_rows``, of 10 mixed columns (int id, int user_id, ~12-char text, 10-value
category text, float, bool, timezone-aware timestamp, nullable int (20% NULL), Numeric(10, 2),
nullable text (50% NULL)), generated deterministically and kept in ``bench/data`` (SQLite) and
in the PostgreSQL schema ``bench_frames_<rows>`` of the ``test`` database, so later runs start
at once.

Methods, each in a fresh process, ``--repeat`` times (median reported):

* ``dbapi fetchall``: the driver's cursor, ``fetchall()`` and ``DataFrame.from_records``, the
  floor for anything that builds rows;
* ``pd.read_sql``: ``pd.read_sql(BenchRow.query.statement, db.engine)``;
* ``naive ORM``: ``pd.DataFrame([r.__dict__ for r in BenchRow.query.all()])``;
* ``connectorx``: ``connectorx.read_sql(url, sql)`` (pandas);
* ``ADBC``: the ADBC driver's ``fetch_arrow_table().to_pandas()``;
* ``Workbench.frame``: ``analysis.connect(app).frame(BenchRow)``.

Seconds are measured inside each process around the read itself (start-up, imports and
connecting excluded). Peak RSS is the process's ``ru_maxrss``; "RSS added" is that peak minus
the RSS just before the read (imports and connection included in the baseline), which is what
the read itself costs in memory. ``--frames-rows`` (default 1M and 4M) also iterates
``Workbench.frames(BenchRow, chunksize=100_000)`` over tables of those sizes and reports peak
RSS, which must not grow with the row count.

``--write-readme`` puts the results and the command into bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import random
import statistics
import subprocess
import sys
import time
import typing as t

import sqlalchemy as sa

from bench import common
from bench.common import DATA, PG_URL, ROOT

METHODS = ["dbapi fetchall", "pd.read_sql", "naive ORM", "connectorx", "ADBC", "Workbench.frame"]
OURS = "Workbench.frame"
CATEGORIES = [f"category_{i}" for i in range(10)]
BEGIN, END = "<!-- frames:begin -->", "<!-- frames:end -->"


# -- the table ---------------------------------------------------------------------------------


def schema_name(rows: int) -> str:
    return f"bench_frames_{rows}"


def database_url(backend: str, rows: int) -> str:
    if backend == "sqlite":
        return f"sqlite:///{DATA / f'frames-{rows}.sqlite'}"
    return f"{PG_URL}?options=-csearch_path%3D{schema_name(rows)}"


def make_app(url: str) -> t.Any:
    return common.make_app(url, name="bench_frames", tablename="bench_rows")


def generate(rows: int) -> t.Iterator[tuple[t.Any, ...]]:
    rnd = random.Random(20261125)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    for i in range(1, rows + 1):
        yield (
            i,
            rnd.randrange(1, 50_000),
            f"name_{rnd.randrange(10**7):07d}",
            CATEGORIES[rnd.randrange(10)],
            rnd.random() * 1000,
            rnd.random() < 0.5,
            start + dt.timedelta(seconds=i * 7, microseconds=rnd.randrange(10**6)),
            None if rnd.random() < 0.2 else rnd.randrange(1000),
            decimal.Decimal(rnd.randrange(10**6)) / 100,
            None if rnd.random() < 0.5 else f"note {rnd.randrange(10**6)}",
        )


def prepare(backend: str, rows: int) -> str:
    """Create and fill the table once; later runs find it and start at once."""
    url = database_url(backend, rows)
    app = make_app(url)
    with app.app_context():
        db = app.extensions["sqlalchemy"]
        engine = db.engine
        if backend == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema_name(rows)}"')
        else:
            DATA.mkdir(parents=True, exist_ok=True)
        if sa.inspect(engine).has_table("bench_rows"):
            with engine.connect() as conn:
                if conn.execute(sa.text("SELECT count(*) FROM bench_rows")).scalar_one() == rows:
                    return url
            db.drop_all()
        print(f"creating the {rows:,}-row table on {backend}...", file=sys.stderr, flush=True)
        db.create_all()
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if backend == "sqlite":
                cursor.executemany(
                    "INSERT INTO bench_rows VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        (*r[:5], int(r[5]), r[6].replace(tzinfo=None).isoformat(" "), r[7], float(r[8]), r[9])
                        for r in generate(rows)
                    ),
                )
            else:
                with cursor.copy("COPY bench_rows FROM STDIN") as copy:
                    for row in generate(rows):
                        copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
    return url


# -- one method, in a child process -----------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method: str, backend: str, rows: int) -> dict[str, t.Any]:
    """Run ``method`` once and measure it; everything but the read happens before the clock."""
    import pandas as pd
    import pyarrow  # noqa: F401  imported by every method that matters, so in the baseline

    import analysis

    url = database_url(backend, rows)
    app = make_app(url)
    Row = app.extensions["bench_model"]
    table = "bench_rows" if backend == "sqlite" else f'"{schema_name(rows)}".bench_rows'
    sql = f"SELECT * FROM {table}"
    plain_url = url.split("?")[0].replace("+psycopg", "")
    path = url.removeprefix("sqlite:///")
    run: t.Callable[[], t.Any]
    ctx = app.app_context()
    ctx.push()
    db = app.extensions["sqlalchemy"]

    if method == "dbapi fetchall":
        if backend == "sqlite":
            import sqlite3

            conn = sqlite3.connect(path)
        else:
            import psycopg

            conn = psycopg.connect(plain_url.replace("postgresql://", "postgresql://", 1))

        def run() -> t.Any:
            cursor = conn.cursor()
            cursor.execute(sql)
            rows_ = cursor.fetchall()
            return pd.DataFrame.from_records(rows_, columns=[d[0] for d in cursor.description])

    elif method == "pd.read_sql":
        engine = db.engine
        with engine.connect():
            pass

        def run() -> t.Any:
            return pd.read_sql(Row.query.statement, engine)

    elif method == "naive ORM":
        with db.engine.connect():
            pass

        def run() -> t.Any:
            return pd.DataFrame([r.__dict__ for r in Row.query.all()])

    elif method == "connectorx":
        import connectorx as cx

        cx_url = f"sqlite://{path}" if backend == "sqlite" else plain_url

        def run() -> t.Any:
            return cx.read_sql(cx_url, sql)

    elif method == "ADBC":
        if backend == "sqlite":
            import adbc_driver_sqlite.dbapi as adbc

            conn = adbc.connect(path)
        else:
            import adbc_driver_postgresql.dbapi as adbc

            conn = adbc.connect(plain_url)

        def run() -> t.Any:
            cursor = conn.cursor()
            cursor.execute(sql)
            frame = cursor.fetch_arrow_table().to_pandas()
            cursor.close()
            return frame

    elif method == OURS:
        ctx.pop()
        wb = analysis.connect(app)
        import adbc_driver_postgresql.dbapi  # noqa: F401  the optional drivers, in the baseline
        import adbc_driver_sqlite.dbapi  # noqa: F401

        from analysis.read import sqlite_helper

        # Set-up, as ADBC's connect() above is: the SQLite reader process has started.
        if backend == "sqlite":
            sqlite_helper.warm_up(wait=True)

        def run() -> t.Any:
            return wb.frame(Row, progress=False)

    elif method == "Workbench.frames":
        ctx.pop()
        wb = analysis.connect(app)

        def run() -> t.Any:
            n = 0
            for chunk in wb.frames(Row, chunksize=100_000):
                n += len(chunk)
                del chunk
            return n

    else:
        raise SystemExit(f"unknown method {method!r}")

    before = _rss_mb()
    helper_before = common.children_memory_mb("VmRSS")
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    helper_peak = common.children_memory_mb("VmHWM")
    peak = _peak_mb() + helper_peak
    out: dict[str, t.Any] = {
        "seconds": seconds,
        "peak_mb": peak,
        "added_mb": peak - before - helper_before,
        "helper_peak_mb": helper_peak,
    }
    if isinstance(result, pd.DataFrame):
        out["frame_mb"] = float(result.memory_usage(deep=True).sum()) / 2**20
        out["rows"] = len(result)
        out["dtypes"] = {str(k): str(v) for k, v in result.dtypes.items()}
    else:
        out["rows"] = result
    return out


def measure(method: str, backend: str, rows: int, repeat: int) -> dict[str, t.Any]:
    runs = []
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, "-m", "bench.frames", "--child", method, "--backend", backend, "--rows", str(rows)],
            cwd=ROOT, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    result = dict(runs[0])
    for key in ("seconds", "peak_mb", "added_mb", "frame_mb"):
        if key in result:
            result[key] = statistics.median(r[key] for r in runs)
    result["all_seconds"] = [round(r["seconds"], 3) for r in runs]
    return result


# -- report -----------------------------------------------------------------------------------


def report(results: dict[str, t.Any], command: str) -> str:
    lines = [BEGIN, "## Queries to DataFrames (`bench/frames.py`)", "", "```sh", command, "```", ""]
    lines.append(
        f"{results['rows']:,} rows x 10 columns, median of {results['repeat']}, each run in a fresh"
        f" process; {results['when']}; {results['machine']}."
    )
    lines.append(
        "Seconds cover the read alone (start-up, imports and connecting excluded). \"RSS added\" is"
        " the process's peak RSS minus its RSS just before the read, the memory the read itself"
        " costs; the interpreter with pandas, pyarrow, SQLAlchemy and Flask is ~140 MB before it."
        " The machine is shared: seconds vary by 30% from run to run, ratios less."
        " On SQLite, Workbench.frame reads through ADBC in a helper process (an in-process ADBC"
        " connection drops the file locks of the app's own sqlite3 connections; see"
        " analysis/read/sqlite_helper.py): its peak RSS is added to ours in both columns, and its start"
        " counts as connecting, as the ADBC method's connect() does. The ADBC and connectorx rows"
        " read in-process, which is only safe when nothing else in the process has the file open."
    )
    for backend, by_method in results["backends"].items():
        if "prepare" in by_method:
            lines += ["", f"### {backend}", "", f"Could not prepare the table: {by_method['prepare']['error']}"]
            continue
        ours = by_method.get(OURS, {})
        lines += ["", f"### {backend}", "", "| method | s | runs (s) | peak RSS MB | RSS added MB | frame MB | x ours |", "|---|---|---|---|---|---|---|"]
        for method, r in by_method.items():
            if "error" in r:
                lines.append(f"| {method} | failed: {r['error']} | | | | | |")
                continue
            ratio = r["seconds"] / ours["seconds"] if "seconds" in ours else float("nan")
            lines.append(
                f"| {method} | {r['seconds']:.2f} | {', '.join(map(str, r['all_seconds']))} | {r['peak_mb']:.0f} |"
                f" {r['added_mb']:.0f} | {r.get('frame_mb', 0):.0f} | {ratio:.2f} |"
            )
        if "seconds" in ours:
            lines += ["", *targets(by_method)]
        dtypes = ours.get("dtypes")
        if dtypes:
            lines += ["", "Workbench.frame dtypes: " + ", ".join(f"`{k}` {v}" for k, v in dtypes.items())]
    frames = results.get("frames")
    if frames:
        lines += ["", "### Workbench.frames(chunksize=100_000): peak RSS by table size", "",
                  "| backend | rows | s | peak RSS MB | RSS added MB |", "|---|---|---|---|---|"]
        for backend, by_rows in frames.items():
            for rows, r in by_rows.items():
                if "error" in r:
                    lines.append(f"| {backend} | {int(rows):,} | failed: {r['error']} | | |")
                else:
                    lines.append(f"| {backend} | {int(rows):,} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {r['added_mb']:.0f} |")
            sizes = sorted(by_rows, key=int)
            if len(sizes) > 1 and all("peak_mb" in by_rows[s] for s in sizes):
                growth = by_rows[sizes[-1]]["peak_mb"] / by_rows[sizes[0]]["peak_mb"] - 1
                verdict = "met" if growth <= 0.15 else "NOT met"
                lines.append(f"| {backend} | growth {int(sizes[0]):,} -> {int(sizes[-1]):,} | | {growth:+.1%} (target <= +15%: {verdict}) | |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def targets(by_method: dict[str, t.Any]) -> list[str]:
    ours = by_method[OURS]
    others = {m: r for m, r in by_method.items() if m != OURS and "seconds" in r}
    out = []

    def check(label: str, ok: bool, figure: str) -> None:
        out.append(f"- {label}: {figure} -> {'met' if ok else 'NOT met'}")

    if "pd.read_sql" in others:
        x = others["pd.read_sql"]["seconds"] / ours["seconds"]
        check("at least 2x faster than pd.read_sql", x >= 2, f"{x:.1f}x")
    if "naive ORM" in others:
        x = others["naive ORM"]["seconds"] / ours["seconds"]
        check("at least 10x faster than the naive ORM loop", x >= 10, f"{x:.1f}x")
    if others:
        fastest = min(others, key=lambda m: others[m]["seconds"])
        x = ours["seconds"] / others[fastest]["seconds"]
        check(f"within 1.3x of the fastest alternative ({fastest})", x <= 1.3, f"{x:.2f}x its time")
    x = ours["added_mb"] / ours["frame_mb"]
    check("RSS added by the read <= 2x the DataFrame's memory", x <= 2, f"{x:.2f}x ({ours['added_mb']:.0f} MB for {ours['frame_mb']:.0f} MB)")
    return out


def machine() -> str:
    import platform

    import pandas as pd
    import pyarrow as pa

    versions = f"Python {platform.python_version()}, pandas {pd.__version__}, pyarrow {pa.__version__}, SQLAlchemy {sa.__version__}"
    try:
        import adbc_driver_manager
        import connectorx

        versions += f", ADBC {adbc_driver_manager.__version__}, connectorx {connectorx.__version__}"
    except ImportError:
        pass
    return f"{os.cpu_count()} CPUs, {versions}"


def main(argv: t.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.frames", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--frames-rows", default="1000000,4000000", help="table sizes for frames(); 0 to skip")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.backend, args.rows)))
        return

    backends = [b for b in args.backends.split(",") if b]
    methods = [m for m in args.methods.split(",") if m]
    frames_rows = [int(n) for n in args.frames_rows.split(",") if int(n) > 0]
    results: dict[str, t.Any] = {
        "rows": args.rows, "repeat": args.repeat, "backends": {}, "frames": {},
        "when": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f"frames-{time.strftime('%Y%m%d-%H%M%S')}.json"

    def step(label: str, run: t.Callable[[], dict[str, t.Any]]) -> dict[str, t.Any]:
        print(f"{label}...", file=sys.stderr, flush=True)
        try:
            r = run()
        except Exception as e:  # a server restarted midway: record it, go on with the rest
            r = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}
        print(f"  {json.dumps({k: v for k, v in r.items() if k != 'dtypes'})}", file=sys.stderr, flush=True)
        partial.write_text(json.dumps(results, indent=2))
        return r

    for backend in backends:
        results["backends"][backend] = {}
        try:
            prepare(backend, args.rows)
        except Exception as e:
            results["backends"][backend] = {"prepare": {"error": str(e).splitlines()[0]}}
            continue
        for method in methods:
            results["backends"][backend][method] = step(
                f"{backend}: {method}", lambda m=method, b=backend: measure(m, b, args.rows, args.repeat)
            )
    for backend in backends if frames_rows else []:
        results["frames"][backend] = {}
        for rows in frames_rows:
            results["frames"][backend][str(rows)] = step(
                f"{backend}: Workbench.frames over {rows:,} rows",
                lambda b=backend, n=rows: (prepare(b, n), measure("Workbench.frames", b, n, 1))[1],
            )
    partial.write_text(json.dumps(results, indent=2))

    command = ".venv/bin/python -m bench.frames" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    text = report(results, command)
    print(text)
    if args.write_readme:
        common.write_readme(text, BEGIN, END)


if __name__ == "__main__":
    main()
