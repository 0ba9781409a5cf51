"""The ingest endpoint behind a real HTTP server while the database fails under it.

Werkzeug's threaded server runs the app; client threads post batches with Idempotency-Keys
and retry a 503 with the same key, as the README tells cron clients to. Meanwhile the SQLite
file is write-locked by another process past the busy timeout, or this test's PostgreSQL
connections (found by their ``application_name``, nobody else's) are killed with
``pg_terminate_backend``. Every failed request must be a 503 with ``Retry-After``, and in the
end every request must be inserted exactly once.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from testing_backends import pg_admin_connection, wait_for_no_pg_connections
from werkzeug.serving import make_server

from my_app import api_keys, create_app
from my_app.db import db
from my_app.models import Data

RECORDS = 5


class Outcome:
    """What the clients saw: every answer, and the sources of the requests that got a 201."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: list[tuple[int, dict[str, str], dict[str, t.Any]]] = []
        self.sources: list[str] = []

    def failed(self) -> list[tuple[int, dict[str, str], dict[str, t.Any]]]:
        return [answer for answer in self.answers if answer[0] != 201]


def make_app(url: str, **config: t.Any) -> Flask:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "RETRY_AFTER_SECONDS": 1, **config})
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture
def serve() -> t.Iterator[t.Callable[[Flask], int]]:
    """Start a threaded Werkzeug server for an app; return its port."""
    started: list[tuple[t.Any, threading.Thread, Flask]] = []

    def start(app: Flask) -> int:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread, app))
        return int(server.server_port)

    yield start
    for server, thread, app in started:
        server.shutdown()
        server.server_close()
        thread.join(5)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def post(port: int, key: str, body: list[dict[str, t.Any]], idempotency_key: str) -> tuple[int, dict[str, str], t.Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "POST",
            "/api/v1/data",
            body=json.dumps(body),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
            },
        )
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(response.read())
    finally:
        conn.close()


def client(port: int, key: str, name: str, outcome: Outcome, keep_going: t.Callable[[int], bool]) -> None:
    """Send requests until ``keep_going(n)`` is false, each retried with its key until a 201."""
    n = 0
    while keep_going(n):
        idempotency_key = f"{name}-{n}"
        body = [{"value": float(i), "source": f"{idempotency_key}:{i}"} for i in range(RECORDS)]
        for _ in range(100):
            status, headers, payload = post(port, key, body, idempotency_key)
            with outcome.lock:
                outcome.answers.append((status, headers, payload))
            if status == 201:
                with outcome.lock:
                    outcome.sources.extend(record["source"] for record in body)
                break
            time.sleep(min(float(headers.get("retry-after", "1")), 0.1))  # the test does not wait 1 s
        else:
            raise AssertionError(f"{idempotency_key} never got through")
        n += 1


def run_clients(port: int, key: str, outcome: Outcome, keep_going: t.Callable[[int], bool], clients: int = 4) -> None:
    threads = [
        threading.Thread(target=client, args=(port, key, f"c{i}", outcome, keep_going)) for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive()


def assert_503s_with_retry_after_and_each_request_inserted_once(app: Flask, outcome: Outcome) -> None:
    failed = outcome.failed()
    assert failed, "the fault should have failed some requests"
    for status, headers, payload in failed:
        assert status == 503, (status, payload)
        assert headers["retry-after"] == "1"
        assert payload["error"] == "Service Unavailable"
        assert "same Idempotency-Key" in payload["message"]
    with app.app_context():
        stored = [source for (source,) in db.session.execute(sa.select(Data.source))]
    assert len(stored) == len(set(stored)), "a request was inserted twice"
    assert sorted(stored) == sorted(outcome.sources)


@pytest.mark.backends("sqlite")
def test_a_sqlite_file_locked_past_the_busy_timeout_gives_503s_then_every_request_once(
    database_url: str, serve: t.Callable[[Flask], int], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(database_url, SQLITE_BUSY_TIMEOUT_MS=200)
    with app.app_context():
        key = api_keys.create_api_key("cron").key
    port = serve(app)
    path = sa.make_url(database_url).database
    locker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(1.5); c.execute('ROLLBACK')\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        outcome = Outcome()
        run_clients(port, key, outcome, keep_going=lambda n: n < 12)
    finally:
        locker.wait(30)
        if locker.stdout is not None:
            locker.stdout.close()

    assert_503s_with_retry_after_and_each_request_inserted_once(app, outcome)
    assert len(outcome.sources) == 4 * 12 * RECORDS
    warnings = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    assert len(warnings) == len(outcome.failed())  # once per failed request
    assert all(r.levelname == "WARNING" and "database is locked" in r.getMessage() for r in warnings)
    assert key.split(".")[0] not in caplog.text and key.split(".")[1] not in caplog.text


@pytest.mark.backends("postgresql")
def test_killed_postgresql_connections_give_503s_then_every_request_once(
    database_url: str, serve: t.Callable[[Flask], int]
) -> None:
    name = f"t_kill_{uuid.uuid4().hex[:10]}"
    app = make_app(f"{database_url}&application_name={name}")
    with app.app_context():
        key = api_keys.create_api_key("cron").key
    port = serve(app)
    outcome = Outcome()
    stop = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        with pg_admin_connection() as admin:
            while not stop.is_set():
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
                ).fetchall()
                killed.append(len(rows))
                time.sleep(0.02)

    deadline = time.monotonic() + 60

    def keep_going(n: int) -> bool:
        # at least 25 requests per client, then on until the kills have failed a few
        return n < 25 or (len(outcome.failed()) < 3 and time.monotonic() < deadline)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        run_clients(port, key, outcome, keep_going)
    finally:
        stop.set()
        thread.join(10)

    assert sum(killed) > 0
    assert_503s_with_retry_after_and_each_request_inserted_once(app, outcome)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    wait_for_no_pg_connections(name, within=10)


@pytest.mark.backends("sqlite")
def test_html_pages_and_the_api_answer_503_when_the_server_refuses_connections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2"
    app = create_app({"SQLALCHEMY_DATABASE_URI": unreachable, "RETRY_AFTER_SECONDS": 3})
    client = app.test_client()

    page = client.get("/")
    assert page.status_code == 503 and page.headers["Retry-After"] == "3"
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "The database is unavailable for a moment" in html and "Try again in 3 seconds" in html

    health = client.get("/api/v1/health")
    assert health.status_code == 503 and health.headers["Retry-After"] == "3"
    assert health.get_json()["error"] == "Service Unavailable"
    assert "Retry-After" in health.get_json()["message"]

    warnings = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    assert [r.levelname for r in warnings] == ["WARNING", "WARNING"]
    assert "GET / answered 503" in warnings[0].getMessage()
    assert "Connection refused" in warnings[1].getMessage() or "connection failed" in warnings[1].getMessage()
    assert all(r.exc_info is None for r in warnings)  # one line, not a traceback
