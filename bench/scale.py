"""Benchmark: a groupby over a table bigger than one process should hold, Workbench.dask on a
distributed.LocalCluster against what users reach for.

    .venv/bin/python -m bench.scale                         # 4M rows in PostgreSQL, 2 workers
    .venv/bin/python -m bench.scale --rows 1000000          # a quicker look

The table is bench/frames.py's ``bench_rows`` (10 mixed columns) in the PostgreSQL schema
``bench_frames_<rows>``, created once. The query: ``SELECT * FROM bench_rows`` grouped by
``category`` with the sums of ``value`` and ``amount``, the count of ``quantity`` and the row
count. Methods, each in a fresh process:

* ``frame()+pandas``: ``wb.frame(BenchRow).groupby(...).agg(...)`` in one process;
* ``dask read_sql_query``: ``dask.dataframe.read_sql_query(select, url, index_col="id",
  npartitions=N)`` on the cluster (each partition through ``pd.read_sql``);
* ``connectorx partitioned``: ``connectorx.read_sql(url, sql, partition_on="id",
  partition_num=N)`` into one pandas frame (Rust threads), then the pandas groupby;
* ``Workbench.dask``: ``wb.dask(BenchRow, npartitions=N).groupby(...).agg(...).compute()``.

The cluster is ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``, started
before the clock; its workers rebuild the app from ``bench.scale:create_app`` as a real
cluster's would. Seconds cover the read and the groupby. Peak RSS is per process: the client
(``ru_maxrss``) and each worker (``ru_maxrss`` in the worker). ``--write-readme`` puts the
results and the command into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import typing as t

from bench import common, frames

METHODS = ["frame()+pandas", "dask read_sql_query", "connectorx partitioned", "Workbench.dask"]
OURS = "Workbench.dask"
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
URL_VARIABLE = "BENCH_SCALE_URL"


def create_app() -> t.Any:
    """The benchmark's app, for the workers: its database URL comes from the environment."""
    return frames.make_app(os.environ[URL_VARIABLE])


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline_mb() -> float:
    """A worker's RSS once it has imported what a read needs (before reading anything)."""
    import adbc_driver_postgresql.dbapi  # noqa: F401
    import dask.dataframe  # noqa: F401
    import pandas  # noqa: F401
    import psycopg  # noqa: F401
    import pyarrow  # noqa: F401

    import analysis  # noqa: F401

    create_app()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _aggregate(frame: t.Any) -> t.Any:
    return frame.groupby("category").agg(
        value=("value", "sum"), amount=("amount", "sum"), quantity=("quantity", "count"), rows=("id", "count")
    )


def child(method: str, rows: int, npartitions: int) -> dict[str, t.Any]:
    import pandas as pd

    import analysis

    url = frames.database_url("postgresql", rows)
    os.environ[URL_VARIABLE] = url
    plain_url = url.split("?")[0].replace("+psycopg", "")
    table = f'"{frames.schema_name(rows)}".bench_rows'
    cluster_seconds = 0.0
    client = None
    baselines: list[float] = []
    if method in ("dask read_sql_query", "Workbench.dask"):
        import distributed

        started = time.perf_counter()
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        )
        client = distributed.Client(cluster)
        cluster_seconds = time.perf_counter() - started
        baselines = sorted(client.run(_baseline_mb).values())
    wb = analysis.connect("bench.scale:create_app")
    Row = wb.app.extensions["bench_model"]
    result: t.Any
    started = time.perf_counter()
    if method == "frame()+pandas":
        result = _aggregate(wb.frame(Row, progress=False))
    elif method == "Workbench.dask":
        ddf = wb.dask(Row, npartitions=npartitions)
        result = ddf.groupby("category").agg(
            {"value": "sum", "amount": "sum", "quantity": "count", "id": "count"}
        ).compute()
    elif method == "dask read_sql_query":
        import dask.dataframe as dd
        import sqlalchemy as sa

        select = sa.select(sa.table("bench_rows", *(sa.column(c) for c in Row.__table__.columns.keys()),
                                    schema=frames.schema_name(rows)))
        engine_url = plain_url.replace("postgresql://", "postgresql+psycopg://")
        # Dask infers the meta from the first 5 rows, where `quantity` has no NULL: int64, and
        # the read then fails on the first NULL. A user passes the meta by hand, as here.
        meta = pd.read_sql(select.limit(1000), engine_url, index_col="id").astype({"quantity": "float64"}).iloc[:0]
        ddf = dd.read_sql_query(select, engine_url, index_col="id", npartitions=npartitions, meta=meta)
        result = ddf.reset_index().groupby("category").agg(
            {"value": "sum", "amount": "sum", "quantity": "count", "id": "count"}
        ).compute()
    elif method == "connectorx partitioned":
        import connectorx as cx

        frame = cx.read_sql(plain_url, f"SELECT * FROM {table}", partition_on="id", partition_num=npartitions)
        result = _aggregate(frame)
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - started
    workers: list[float] = []
    if client is not None:
        workers = sorted(client.run(_peak_mb).values())
        client.close()
    wb.close()
    totals = result.sort_index()
    return {
        "seconds": round(seconds, 2),
        "cluster_seconds": round(cluster_seconds, 2),
        "client_peak_mb": round(_peak_mb()),
        "worker_peak_mb": [round(w) for w in workers],
        "worker_baseline_mb": [round(b) for b in baselines],
        "rows": int(totals.iloc[:, -1].sum()),
        "value_sum": float(pd.to_numeric(totals.iloc[:, 0]).sum()),
    }


def measure(method: str, rows: int, npartitions: int, repeat: int = 1) -> dict[str, t.Any]:
    """The median run of ``repeat`` (each in a fresh process), with every run's seconds."""
    import statistics

    runs = [_run_once(method, rows, npartitions) for _ in range(repeat)]
    good = [r for r in runs if "error" not in r]
    for failed in (r for r in runs if "error" in r):
        print(f"  a run of {method} failed: {failed['error']}", file=sys.stderr, flush=True)
    if not good:
        return runs[0]
    median = statistics.median_low([r["seconds"] for r in good])
    chosen = next(r for r in good if r["seconds"] == median)
    return {**chosen, "runs": [r["seconds"] for r in good]}


def _run_once(method: str, rows: int, npartitions: int) -> dict[str, t.Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--child", method, "--rows", str(rows), "--npartitions", str(npartitions)],
        capture_output=True, text=True, cwd=common.ROOT, timeout=1800,
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def report(results: dict[str, t.Any], command: str) -> str:
    rows, n = results["rows"], results["npartitions"]
    ours = results["methods"].get(OURS, {}).get("seconds")
    lines = [
        BEGIN,
        "## Bigger than memory: a groupby on Dask (`bench/scale.py`)",
        "",
        "```sh",
        command,
        "```",
        "",
        f"{rows:,} rows x 10 columns in PostgreSQL, grouped by `category` (sums, counts); {n} partitions;"
        f" `LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`; the median of"
        f" {results['repeat']} runs, each in a fresh process (the partition sweep: one run each); {results['when']}; {results['machine']}. Seconds cover the read and the groupby (the"
        " cluster's start is excluded and shown apart). Peak RSS per process: the client and each worker.",
        "",
        "| method | s | runs (s) | x ours | client peak MB | worker peak MB (before the read) | rows counted |",
        "|---|---:|---|---:|---:|---|---:|",
    ]
    for method in METHODS:
        r = results["methods"].get(method, {})
        if "error" in r:
            lines.append(f"| {method} | failed: {r['error']} | | | | | |")
            continue
        ratio = f"{r['seconds'] / ours:.2f}" if ours else "?"
        workers = ", ".join(
            f"{w} ({b})" for w, b in zip(r["worker_peak_mb"], r.get("worker_baseline_mb", []), strict=False)
        ) or "–"
        runs = ", ".join(f"{x:.2f}" for x in r.get("runs", [r["seconds"]]))
        lines.append(
            f"| {method} | {r['seconds']:.2f} | {runs} | {ratio} | {r['client_peak_mb']} | {workers} | {r['rows']:,} |"
        )
    lines += ["", "Workbench.dask's peak RSS per worker by partition size:", "",
              "| npartitions | rows per partition | s | worker peak MB (before the read) | added by the read, MB |",
              "|---:|---:|---:|---|---|"]
    for parts, r in sorted(results["by_partitions"].items(), key=lambda kv: int(kv[0])):
        if "error" in r:
            lines.append(f"| {parts} | | failed: {r['error']} | |")
            continue
        peaks, bases = r["worker_peak_mb"], r.get("worker_baseline_mb", [])
        pairs = ", ".join(f"{w} ({b})" for w, b in zip(peaks, bases, strict=False))
        added = ", ".join(str(w - b) for w, b in zip(peaks, bases, strict=False))
        lines.append(f"| {parts} | {rows // int(parts):,} | {r['seconds']:.2f} | {pairs} | {added} |")
    lines += ["", *results.get("notes", []), END]
    return "\n".join(lines) + "\n"


def machine() -> str:
    import platform

    import dask
    import distributed
    import pandas
    import pyarrow

    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, pandas {pandas.__version__}, pyarrow"
        f" {pyarrow.__version__}, dask {dask.__version__}, distributed {distributed.__version__}"
    )


def main(argv: t.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--npartitions", type=int, default=8)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeat", type=int, default=3, help="runs per method (the median is reported)")
    parser.add_argument("--partition-sweep", default="4,16", help="more npartitions for Workbench.dask; '' to skip")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.rows, args.npartitions)))
        return
    frames.prepare("postgresql", args.rows)
    results: dict[str, t.Any] = {
        "rows": args.rows, "npartitions": args.npartitions, "repeat": args.repeat, "methods": {}, "by_partitions": {},
        "when": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
    }
    for method in [m for m in args.methods.split(",") if m]:
        print(f"{method}...", file=sys.stderr, flush=True)
        results["methods"][method] = measure(method, args.rows, args.npartitions, args.repeat)
        print(f"  {results['methods'][method]}", file=sys.stderr, flush=True)
    if OURS in results["methods"]:
        results["by_partitions"][str(args.npartitions)] = results["methods"][OURS]
    for parts in [int(p) for p in args.partition_sweep.split(",") if p]:
        print(f"{OURS}, {parts} partitions...", file=sys.stderr, flush=True)
        results["by_partitions"][str(parts)] = measure(OURS, args.rows, parts)
        print(f"  {results['by_partitions'][str(parts)]}", file=sys.stderr, flush=True)
    command = ".venv/bin/python -m bench.scale" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    text = report(results, command)
    print(text)
    if args.write_readme:
        common.write_readme(text, BEGIN, END)


if __name__ == "__main__":
    main()
