"""Benchmark: a profile of a 1M-row table, wb.profile against frame() + describe().

    .venv/bin/python -m bench.explore --write-readme
    .venv/bin/python -m bench.explore --rows 100000 --repeat 1     # a quick look

The 10-column table of ``bench.frames`` (ints, a nullable int, text, category-like text, float,
bool, timezone-aware timestamp, Numeric(10, 2), nullable text), on SQLite and PostgreSQL.
Methods, each in a fresh process, ``--repeat`` times (median reported):

* ``frame + describe``: ``wb.frame(BenchRow).describe(include="all")`` (the Numeric column
  cast to float first: describe fails on its Arrow decimal dtype) plus the NULL counts and
  distinct counts a profile has (``isna().sum()``, ``nunique()``): what users do today;
* ``Workbench.profile``: ``wb.profile(BenchRow)``: aggregate queries in the database.

Seconds are measured around the call (imports and connecting excluded). "RSS added" is the
peak RSS of the process (and of its helper processes) minus the RSS just before the call.
Targets: the profile at least 5x faster, and under 100 MB added.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import typing as t

from bench import common, frames
from bench.common import ROOT

METHODS = ["frame + describe", "Workbench.profile"]
OURS = "Workbench.profile"
BEGIN, END = "<!-- explore:begin -->", "<!-- explore:end -->"


def child(method: str, backend: str, rows: int) -> dict[str, t.Any]:
    import pandas as pd  # noqa: F401  in the baseline: both methods need it
    import pyarrow  # noqa: F401

    import analysis

    app = frames.make_app(frames.database_url(backend, rows))
    Row = app.extensions["bench_model"]
    wb = analysis.connect(app)
    if method == "Workbench.profile":
        import analysis.explore.profile  # noqa: F401  (imported by the first call: not timed)
    before = frames._rss_mb() + common.children_memory_mb("VmRSS")
    started = time.perf_counter()
    if method == "Workbench.profile":
        result = wb.profile(Row)
        checksum = int(result["count"].sum())
    else:
        frame = wb.frame(Row, progress=False)
        # describe(include="all") fails on the Arrow decimal column of a Numeric (pandas 3.1:
        # "int or Decimal object expected"); users cast it to float first.
        decimals = [name for name, dtype in frame.dtypes.items() if "decimal" in str(dtype)]
        described = frame.astype({name: "float64" for name in decimals}).describe(include="all")
        nulls, distinct = frame.isna().sum(), frame.nunique()
        checksum = int(frame.count().sum())
        del described, nulls, distinct
    seconds = time.perf_counter() - started
    peak = frames._peak_mb() + common.children_memory_mb("VmHWM")
    wb.close()
    return {"seconds": seconds, "rss_added_mb": peak - before, "non_null_values": checksum}


def measure(method: str, backend: str, rows: int, repeat: int) -> dict[str, t.Any]:
    runs = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-m", "bench.explore", "--child", method, "--backend", backend, "--rows", str(rows)],
            cwd=ROOT, capture_output=True, text=True, timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "runs": [round(r["seconds"], 2) for r in runs],
        "rss_added_mb": max(r["rss_added_mb"] for r in runs),
        "non_null_values": runs[0]["non_null_values"],
    }


def report(results: dict[str, t.Any], command: str) -> str:
    lines = [
        BEGIN,
        "## Profiles: `wb.profile` against `frame()` + `describe()` (`bench/explore.py`)",
        "",
        "```sh",
        command,
        "```",
        "",
        f"{results['rows']:,} rows of the 10-column table, median of {results['repeat']}, each run in a fresh"
        f" process; {results['when']} UTC; {results['machine']}.",
    ]
    for backend, by_method in results["backends"].items():
        lines += ["", f"### {backend}", "", "| method | s | runs (s) | RSS added MB | x ours | non-NULL values |",
                  "|---|---|---|---|---|---|"]
        ours = by_method.get(OURS, {})
        for method in METHODS:
            r = by_method.get(method, {})
            if "error" in r or not r:
                lines.append(f"| {method} | failed: {r.get('error', 'not run')} | | | | |")
                continue
            ratio = r["seconds"] / ours["seconds"] if ours.get("seconds") else float("nan")
            lines.append(
                f"| {method} | {r['seconds']:.2f} | {', '.join(map(str, r['runs']))} | {r['rss_added_mb']:.0f}"
                f" | {ratio:.2f} | {r['non_null_values']:,} |"
            )
        if ours.get("seconds") and by_method.get("frame + describe", {}).get("seconds"):
            speedup = by_method["frame + describe"]["seconds"] / ours["seconds"]
            lines += [
                "",
                f"- at least 5x faster than frame() + describe(): {speedup:.1f}x -> {'met' if speedup >= 5 else 'NOT met'}",
                f"- under 100 MB added: {ours['rss_added_mb']:.0f} MB -> {'met' if ours['rss_added_mb'] < 100 else 'NOT met'}",
            ]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main(argv: t.Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.explore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.backend, args.rows)))
        return
    results: dict[str, t.Any] = {
        "rows": args.rows, "repeat": args.repeat, "backends": {},
        "when": time.strftime("%Y-%m-%d %H:%M"), "machine": frames.machine(),
    }
    for backend in [b for b in args.backends.split(",") if b]:
        frames.prepare(backend, args.rows)
        results["backends"][backend] = {}
        for method in METHODS:
            print(f"{backend}: {method}...", file=sys.stderr, flush=True)
            try:
                results["backends"][backend][method] = measure(method, backend, args.rows, args.repeat)
            except Exception as e:
                results["backends"][backend][method] = {"error": str(e).splitlines()[0]}
            print(f"  {results['backends'][backend][method]}", file=sys.stderr, flush=True)
    text = report(results, "python -m bench.explore " + " ".join(argv or []))
    print(text)
    if args.write_readme:
        common.write_readme(text, BEGIN, END)


if __name__ == "__main__":
    main(sys.argv[1:])
