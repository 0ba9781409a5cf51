"""Benchmark: POST /api/v1/data under load and database faults, behind gunicorn.

    .venv/bin/python -m bench.ingest_load --write-readme        # sqlite, postgresql, mysql
    .venv/bin/python -m bench.ingest_load --backends postgresql --fault pg-restart --write-readme

Each run starts gunicorn (``--workers 4``, sync workers) on 127.0.0.1 serving
``my_app.create_app()`` on a private database (a SQLite file in ``bench/data``, a PostgreSQL
schema, a MariaDB database), then:

1. **Cost per request**, one client, requests one after the other, no fault: our endpoint
   (10 records, an ``Idempotency-Key``) against a naive endpoint added to the same server
   (``POST /naive/data``, defined here, not in the app: the key looked up in plain text, one ORM
   object per record, ``add_all``, ``commit``, then the ids, as such endpoints are usually
   written; and a variant that reads the ids after a ``flush``, saving the refresh queries).
   CPU time of the gunicorn workers per request (from /proc, via psutil) and
   median latency, blocks of the two interleaved.
2. **Flat cost**: 200,000 idempotency records (``--stored``) are added for the client's key,
   then step 1's measure is repeated and our endpoint's time compared with the empty table's
   (the quietest block of each: noise on a shared machine only adds time).
3. **Load**, with the records of step 2 still stored: ``--clients`` threads send
   ``--requests`` requests of 10 records, each with its own ``Idempotency-Key``; a client
   retries a 503 after ``Retry-After`` and a refused or dropped connection after 0.2 s, with
   the same key, until it gets a 201. Meanwhile ``--fault``:
   ``pg-kill`` (``pg_terminate_backend`` on this run's connections, by ``application_name``,
   every 0.2 s for 5 s), ``mysql-kill`` (``KILL CONNECTION`` on this run's database's
   connections, the same pacing), ``sqlite-lock`` (another process holds ``BEGIN IMMEDIATE``
   for 8 s, past the 5 s busy timeout) or ``pg-restart`` (the PostgreSQL server is restarted
   once: it disturbs everyone using it, so run it last and alone). Reported: requests/s,
   latency percentiles of all attempts, status counts, and the rows expected against the rows
   found, lost and duplicated (every record carries a unique ``source``).

Results are kept per backend and fault in ``bench/data/ingest_results.json``; ``--write-readme``
writes all of them into bench/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import http.client
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import typing as t
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bench import common
from bench.common import DATA, PG_URL, ROOT
from my_app.db import Model

BEGIN, END = "<!-- ingest:begin -->", "<!-- ingest:end -->"
RESULTS = DATA / "ingest_results.json"
MYSQL_URL = os.environ.get("BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
DEFAULT_FAULTS = {"sqlite": "sqlite-lock", "postgresql": "pg-kill", "mysql": "mysql-kill"}
FAULTS = ("none", "sqlite-lock", "pg-kill", "pg-restart", "mysql-kill")
WORKERS = 4


# --- the server side: the app with the naive endpoint beside ours --------------------------


def bench_app() -> t.Any:
    """``my_app.create_app()`` plus ``POST /naive/data``: what gunicorn serves in this bench."""
    from flask import abort, request

    from my_app import create_app
    from my_app.db import db
    from my_app.models import Data

    naive_key = NaiveApiKey
    app = create_app()

    def naive_rows() -> list[t.Any]:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        key = naive_key.query.filter_by(key=token).first()
        if key is None:
            abort(401)
        payload = request.get_json()
        records = payload if isinstance(payload, list) else [payload]
        rows = [Data(value=r["value"], source=r.get("source")) for r in records]
        db.session.add_all(rows)
        return rows

    def naive_ingest() -> tuple[dict[str, t.Any], int]:
        rows = naive_rows()
        db.session.commit()
        ids = [row.id for row in rows]  # as usually written: each id is refreshed after the commit
        return {"ids": ids, "count": len(ids)}, 201

    def naive_flush_ingest() -> tuple[dict[str, t.Any], int]:
        rows = naive_rows()
        db.session.flush()  # the ids without refresh queries
        ids = [row.id for row in rows]
        db.session.commit()
        return {"ids": ids, "count": len(ids)}, 201

    app.add_url_rule("/naive/data", "naive_ingest", naive_ingest, methods=["POST"])
    app.add_url_rule("/naive-flush/data", "naive_flush_ingest", naive_flush_ingest, methods=["POST"])
    return app


class NaiveApiKey(Model):
    """The naive endpoint's key table: the key in plain text."""

    __tablename__ = "bench_naive_api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(100), unique=True)


# --- databases ----------------------------------------------------------------------------


class Database:
    """A private database namespace for one run, dropped afterwards."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
        if backend == "sqlite":
            DATA.mkdir(parents=True, exist_ok=True)
            self.path = DATA / f"{self.name}.sqlite"
            self.url = f"sqlite:///{self.path}"
        elif backend == "postgresql":
            self._admin(f'CREATE SCHEMA "{self.name}"')
            self.url = f"{PG_URL}?options=-csearch_path%3D{self.name}&application_name={self.name}"
        elif backend == "mysql":
            self._admin(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            self.url = f"{MYSQL_URL.rsplit('/', 1)[0]}/{self.name}?charset=utf8mb4"
        else:
            raise SystemExit(f"unknown backend {backend!r}: use sqlite, postgresql or mysql")

    def _admin(self, statement: str, params: dict[str, t.Any] | None = None) -> list[t.Any]:
        url = PG_URL if self.backend == "postgresql" else MYSQL_URL
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text(statement), params or {})
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def drop(self) -> None:
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                path = self.path.with_name(self.path.name + suffix)
                if path.exists():
                    path.unlink()
        elif self.backend == "postgresql":
            self._admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n", {"n": self.name}
            )
            self._admin(f'DROP SCHEMA "{self.name}" CASCADE')
        else:
            self._admin(f"DROP DATABASE IF EXISTS `{self.name}`")

    def server_version(self) -> str:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                if self.backend == "sqlite":
                    return "SQLite " + str(conn.exec_driver_sql("SELECT sqlite_version()").scalar())
                version = str(conn.exec_driver_sql("SELECT version()").scalar())
                return version.split(" on ")[0].split(",")[0] if self.backend == "postgresql" else "MariaDB " + version
        finally:
            engine.dispose()

    def kill_connections(self) -> int:
        """Kill this run's server connections (only this run's); return how many."""
        if self.backend == "postgresql":
            rows = self._admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :n AND pid <> pg_backend_pid()",
                {"n": self.name},
            )
            return len(rows)
        ids = self._admin("SELECT id FROM information_schema.PROCESSLIST WHERE db = :n", {"n": self.name})
        killed = 0
        for (thread_id,) in ids:
            try:
                self._admin(f"KILL CONNECTION {int(thread_id)}")
                killed += 1
            except sa.exc.DBAPIError:
                pass  # it ended on its own meanwhile
        return killed


def prepare(database: Database) -> tuple[str, str, int]:
    """Create the tables, our API key and the naive endpoint's; return both keys and the key id."""
    from my_app import api_keys, create_app
    from my_app.db import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database.url})
    naive_key = NaiveApiKey
    with app.app_context():
        db.create_all()
        new = api_keys.create_api_key("bench-load")
        plain = secrets.token_urlsafe(32)
        db.session.add(naive_key(key=plain))
        db.session.commit()
        key_id = new.record.id
        db.session.remove()
        db.engine.dispose()
    return new.key, plain, key_id


def count_rows(database: Database) -> tuple[int, int]:
    """(rows, distinct sources) of the load phase's rows."""
    engine = sa.create_engine(database.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT count(*), count(DISTINCT source) FROM data WHERE source LIKE 'load-%'")
            ).one()
            return int(row[0]), int(row[1])
    finally:
        engine.dispose()


def store_idempotency_records(database: Database, key_id: int, n: int) -> float:
    """Add ``n`` fresh idempotency records for the key; return the seconds it took."""
    from my_app.idempotency import compact
    from my_app.models import IdempotencyRecord

    table = t.cast(sa.Table, IdempotencyRecord.__table__)
    engine = sa.create_engine(database.url, poolclass=sa.pool.NullPool)
    now = dt.datetime.now(dt.timezone.utc)
    start = time.perf_counter()
    try:
        with engine.begin() as conn:
            for first in range(0, n, 10_000):
                conn.execute(
                    sa.insert(table),
                    [
                        {
                            "api_key_id": key_id,
                            "key_digest": f"{i:064x}",
                            "fingerprint": "0" * 64,
                            "status_code": 201,
                            "response": compact(list(range(i * 10, i * 10 + 10))),
                            "created_at": now - dt.timedelta(seconds=i % 3600),
                        }
                        for i in range(first, min(n, first + 10_000))
                    ],
                )
    finally:
        engine.dispose()
    return time.perf_counter() - start


# --- the server process -------------------------------------------------------------------


class Server:
    def __init__(self, url: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MY_APP_", "FLASK_"))}
        env["DATABASE_URL"] = url
        self.log = open(DATA / "ingest_gunicorn.log", "ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{self.port}",
                "--timeout", "60", "--log-level", "warning", "bench.ingest_load:bench_app()",
            ],
            cwd=ROOT, env=env, stdout=self.log, stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, _ = request(self.port, "GET", "/api/v1/health")
                if status == 200 and len(self.workers()) == WORKERS:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"gunicorn did not start; see {self.log.name}")
            time.sleep(0.2)

    def workers(self) -> list[t.Any]:
        import psutil

        return psutil.Process(self.process.pid).children()

    def cpu_seconds(self) -> float:
        total = 0.0
        for worker in self.workers():
            times = worker.cpu_times()
            total += times.user + times.system
        return total

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def batch(prefix: str, n: int = 10) -> bytes:
    return json.dumps([{"value": i * 0.5, "source": f"{prefix}:{i}"} for i in range(n)]).encode()


# --- phases -------------------------------------------------------------------------------


def measure_cost(server: Server, key: str, naive_key: str, *, requests: int, tag: str) -> dict[str, dict[str, float]]:
    """CPU per request and median latency, ours and naive, in interleaved blocks of 25."""
    targets = {
        "ours": ("/api/v1/data", key, True),
        "naive": ("/naive/data", naive_key, False),
        "naive_flush": ("/naive-flush/data", naive_key, False),
    }
    samples: dict[str, dict[str, list[float]]] = {name: {"cpu": [], "lat": []} for name in targets}
    for warm in range(10):  # every worker imports and connects before timing
        for name, (path, secret, _) in targets.items():
            request(server.port, "POST", path, batch(f"warm-{tag}-{name}-{warm}"),
                    {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    blocks = max(1, requests // 25)
    for block in range(blocks):
        for name, (path, secret, idempotent) in targets.items():
            cpu_before = server.cpu_seconds()
            for i in range(25):
                headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
                if idempotent:
                    headers["Idempotency-Key"] = f"cost-{tag}-{block}-{i}"
                start = time.perf_counter()
                status, _, body = request(server.port, "POST", path, batch(f"cost-{tag}-{name}-{block}-{i}"), headers)
                samples[name]["lat"].append(time.perf_counter() - start)
                if status != 201:
                    raise SystemExit(f"{name} endpoint answered {status}: {body[:200]!r}")
            samples[name]["cpu"].append((server.cpu_seconds() - cpu_before) / 25)
    return {
        name: {
            "cpu_ms": statistics.median(s["cpu"]) * 1000,
            "latency_ms": statistics.median(s["lat"]) * 1000,
            # noise on a shared machine only adds time: the quietest block is the best estimate
            "best_block_latency_ms": min(
                statistics.median(s["lat"][i : i + 25]) for i in range(0, len(s["lat"]), 25)
            ) * 1000,
        }
        for name, s in samples.items()
    }


class Fault(threading.Thread):
    def __init__(self, kind: str, database: Database) -> None:
        super().__init__(daemon=True)
        self.kind, self.database = kind, database
        self.done = threading.Event()
        self.note = ""

    def run(self) -> None:
        try:
            if self.kind in ("pg-kill", "mysql-kill"):
                killed, deadline = 0, time.monotonic() + 5
                while time.monotonic() < deadline:
                    killed += self.database.kill_connections()
                    time.sleep(0.2)
                self.note = f"{killed} connections killed over 5 s"
            elif self.kind == "sqlite-lock":
                code = (
                    "import sqlite3, sys, time\n"
                    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                    "c.execute('BEGIN IMMEDIATE'); time.sleep(8); c.execute('ROLLBACK')\n"
                )
                subprocess.run([sys.executable, "-c", code, str(self.database.path)], check=True, timeout=60)
                self.note = "file write-locked by another process for 8 s (busy timeout 5 s)"
            elif self.kind == "pg-restart":
                version = sorted(os.listdir("/etc/postgresql"))[-1]
                start = time.perf_counter()
                subprocess.run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                    check=True, timeout=120, capture_output=True,
                )
                self.note = f"PostgreSQL {version} restarted once ({time.perf_counter() - start:.1f} s)"
        finally:
            self.done.set()


def load(server: Server, database: Database, key: str, *, clients: int, requests: int, fault: str) -> dict[str, t.Any]:
    """The load phase; returns its figures."""
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    progress = {"done": 0}
    fault_thread = Fault(fault, database) if fault != "none" else None
    run = uuid.uuid4().hex[:6]

    def one(n: int) -> None:
        body = batch(f"load-{run}-{n}")
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"load-{run}-{n}",
        }
        for _attempt in range(200):
            start = time.perf_counter()
            try:
                status, response_headers, _ = request(server.port, "POST", "/api/v1/data", body, headers)
            except (OSError, http.client.HTTPException):
                with lock:
                    statuses["connection error"] = statuses.get("connection error", 0) + 1
                time.sleep(0.2)
                continue
            with lock:
                latencies.append(time.perf_counter() - start)
                label = str(status)
                if status == 503:
                    label += " with Retry-After" if "retry-after" in response_headers else " WITHOUT Retry-After"
                statuses[label] = statuses.get(label, 0) + 1
            if status == 201:
                with lock:
                    progress["done"] += 1
                    if fault_thread is not None and not fault_thread.is_alive() and progress["done"] == requests // 4:
                        fault_thread.start()
                return
            if status == 503:
                time.sleep(min(float(response_headers.get("retry-after", 1)), 2.0))
                continue
            raise SystemExit(f"unexpected status {status} for request {n}")
        raise SystemExit(f"request {n} did not get through in 200 attempts")

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - start
    if fault_thread is not None:
        fault_thread.done.wait(120)
    rows, distinct = count_rows(database)
    expected = requests * 10
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {
        "requests": requests,
        "clients": clients,
        "seconds": elapsed,
        "requests_per_s": requests / elapsed,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "statuses": dict(sorted(statuses.items())),
        "rows_expected": expected,
        "rows_found": rows,
        "lost": expected - distinct,
        "duplicated": rows - distinct,
        "fault_note": fault_thread.note if fault_thread is not None else "",
    }


def run_backend(
    backend: str, fault: str, *, clients: int, requests: int, stored: int, cost_requests: int
) -> dict[str, t.Any]:
    database = Database(backend)
    server = None
    try:
        key, naive_key, key_id = prepare(database)
        server_version = database.server_version()
        server = Server(database.url)
        print(f"[{backend}] cost per request, empty idempotency table ...", flush=True)
        empty = measure_cost(server, key, naive_key, requests=cost_requests, tag="empty")
        print(f"[{backend}] storing {stored:,} idempotency records, cost again ...", flush=True)
        store_seconds = store_idempotency_records(database, key_id, stored)
        full = measure_cost(server, key, naive_key, requests=cost_requests, tag="full")
        print(f"[{backend}] load: {requests} requests, {clients} clients, fault {fault} ...", flush=True)
        loaded = load(server, database, key, clients=clients, requests=requests, fault=fault)
        return {
            "backend": backend,
            "server": server_version,
            "fault": fault,
            "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "empty": empty,
            "full": full,
            "stored": stored,
            "store_seconds": store_seconds,
            "load": loaded,
        }
    finally:
        if server is not None:
            server.stop()
        database.drop()


# --- reporting ----------------------------------------------------------------------------


def summary(result: dict[str, t.Any]) -> str:
    empty, full, load_ = result["empty"], result["full"], result["load"]
    cost_ratio = empty["ours"]["cpu_ms"] / empty["naive"]["cpu_ms"]
    flat_ratio = full["ours"]["best_block_latency_ms"] / empty["ours"]["best_block_latency_ms"]
    plain_500 = sum(n for s, n in load_["statuses"].items() if s.startswith("500"))
    statuses = ", ".join(f"{s}: {n:,}" for s, n in load_["statuses"].items())
    lines = [
        f"### {result['backend']} ({result.get('server', '')}), fault `{result['fault']}` ({result['when']})",
        "",
        "| cost per 10-record request | worker CPU ms | median latency ms | quietest block's median ms |",
        "|---|---:|---:|---:|",
        *[
            f"| {label} | {m['cpu_ms']:.2f} | {m['latency_ms']:.2f} | {m['best_block_latency_ms']:.2f} |"
            for label, m in [
                ("naive endpoint", empty["naive"]),
                ("naive endpoint, ids read after a flush", empty["naive_flush"]),
                ("ours, empty idempotency table", empty["ours"]),
                (f"ours, {result['stored']:,} idempotency records stored", full["ours"]),
            ]
        ],
        "",
        f"- cost: ours is {cost_ratio:.2f}x the naive endpoint's CPU per request (target <= 0.5)"
        f" -> {'met' if cost_ratio <= 0.5 else 'NOT met'};"
        f" {empty['ours']['cpu_ms'] / empty['naive_flush']['cpu_ms']:.2f}x the flushing variant's",
        f"- flat: per-request time (quietest block) with {result['stored']:,} stored records is"
        f" {flat_ratio:.2f}x the empty table's (target <= 1.2) -> {'met' if flat_ratio <= 1.2 else 'NOT met'}",
        f"- load: {load_['requests']:,} requests from {load_['clients']} clients in {load_['seconds']:.1f} s,"
        f" {load_['requests_per_s']:.1f} requests/s; latency p50 {load_['p50_ms']:.0f} ms, p95"
        f" {load_['p95_ms']:.0f} ms, p99 {load_['p99_ms']:.0f} ms",
        f"- fault: {load_['fault_note'] or 'none'}",
        f"- answers: {statuses}",
        f"- rows: {load_['rows_expected']:,} expected, {load_['rows_found']:,} found; {load_['lost']} lost,"
        f" {load_['duplicated']} duplicated, {plain_500} plain 500s",
        "",
    ]
    return "\n".join(lines)


def readme_text(results: dict[str, t.Any]) -> str:
    import importlib.metadata

    import gunicorn

    order = [(b, f) for b in ("sqlite", "postgresql", "mysql") for f in FAULTS]
    sections = [summary(results[f"{b}/{f}"]) for b, f in order if f"{b}/{f}" in results]
    return "\n".join(
        [
            BEGIN,
            "## Ingest under load and faults (`bench/ingest_load.py`)",
            "",
            "```sh",
            ".venv/bin/pip install -e '.[serve]'",
            ".venv/bin/python -m bench.ingest_load --backends sqlite --write-readme      # fault sqlite-lock",
            ".venv/bin/python -m bench.ingest_load --backends postgresql --write-readme  # fault pg-kill",
            ".venv/bin/python -m bench.ingest_load --backends mysql --write-readme       # fault mysql-kill",
            "# last and alone: it restarts the shared PostgreSQL server",
            ".venv/bin/python -m bench.ingest_load --backends postgresql --fault pg-restart --write-readme",
            "```",
            "",
            f"gunicorn {gunicorn.__version__} with {WORKERS} sync workers on 127.0.0.1, `my_app.create_app()`"
            " with its defaults (SQLite busy timeout 5 s, Retry-After 2 s); clients retry a 503 or a"
            " dropped connection with the same Idempotency-Key until they get a 201. The naive endpoint"
            " (plain-text key lookup, ORM objects, commit, then the ids, each refreshed) and its"
            " variant that reads the ids after a flush run in the same server. CPU is the"
            " workers' (user + system) per request, median of blocks of 25; latency is one client's,"
            " its median and the median of the quietest block of 25 (noise only adds time), which the"
            f" flatness ratio compares. {os.cpu_count()} CPUs shared with other work, Python"
            f" {platform.python_version()}, Flask {importlib.metadata.version('flask')}, SQLAlchemy {sa.__version__}.",
            "",
            *sections,
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--fault", choices=FAULTS, help="default: sqlite-lock, pg-kill, mysql-kill per backend")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--stored", type=int, default=200_000)
    parser.add_argument("--cost-requests", type=int, default=200)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)

    DATA.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for backend in args.backends.split(","):
        fault = args.fault or DEFAULT_FAULTS[backend]
        if fault.startswith("pg-") and backend != "postgresql" or fault == "sqlite-lock" and backend != "sqlite":
            raise SystemExit(f"fault {fault} does not apply to {backend}")
        result = run_backend(
            backend, fault, clients=args.clients, requests=args.requests, stored=args.stored,
            cost_requests=args.cost_requests,
        )
        results[f"{backend}/{fault}"] = result
        RESULTS.write_text(json.dumps(results, indent=2))
        print(summary(result), flush=True)
    if args.write_readme:
        common.write_readme(readme_text(results), BEGIN, END)


if __name__ == "__main__":
    main()
