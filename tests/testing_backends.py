"""Real database servers for the tests: availability checks and throwaway namespaces.

Each test that asks for a database gets its own: a temporary SQLite file, a fresh PostgreSQL
schema (selected through the connection's ``search_path``), or a fresh MariaDB database. They
are dropped afterwards, so tests do not depend on order.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
import uuid
from pathlib import Path

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_DB = os.environ.get("TEST_PG_DB", "test")
MYSQL_HOST = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("TEST_MYSQL_PORT", "3306"))

ALL_BACKENDS = ("sqlite", "postgresql", "mysql")


def pg_admin_connection() -> t.Any:
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname=PG_DB, autocommit=True, connect_timeout=5
    )


def mysql_admin_connection(database: str | None = None) -> t.Any:
    import pymysql

    return pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", database=database,
        autocommit=True, connect_timeout=5, charset="utf8mb4",
    )


def server_unavailable_reason(backend: str) -> str | None:
    """``None`` if the backend's server answers, else why not."""
    if backend == "sqlite":
        return None
    try:
        conn = pg_admin_connection() if backend == "postgresql" else mysql_admin_connection()
    except Exception as e:  # any failure to connect means "not available"
        where = f"{PG_HOST}:{PG_PORT}" if backend == "postgresql" else f"{MYSQL_HOST}:{MYSQL_PORT}"
        return f"{backend} server at {where} is not reachable: {e}"
    conn.close()
    return None


@contextlib.contextmanager
def throwaway_database(backend: str, tmp_path: Path) -> t.Iterator[str]:
    """Yield a SQLAlchemy URL to an empty, private database namespace; drop it afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.sqlite'}"
        return
    if backend == "postgresql":
        with pg_admin_connection() as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        try:
            yield (
                f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{PG_DB}"
                f"?options=-csearch_path%3D{name}"
            )
        finally:
            with pg_admin_connection() as conn:
                _drop_pg_schema(conn, name)
        return
    if backend == "mysql":
        conn = mysql_admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()
        try:
            yield f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}?charset=utf8mb4"
        finally:
            conn = mysql_admin_connection()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            finally:
                conn.close()
        return
    raise ValueError(f"unknown backend {backend!r}")


def _drop_pg_schema(conn: t.Any, schema: str) -> None:
    """Drop ``schema``; a test that failed midway may have left a connection holding locks."""
    import psycopg

    conn.execute("SET lock_timeout = '5s'")
    try:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    except psycopg.errors.LockNotAvailable:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()"
            " AND state LIKE 'idle in transaction%%'",
            (PG_DB,),
        )
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def pg_states(application_name: str) -> list[str]:
    """The ``pg_stat_activity`` states of the connections named ``application_name``, sorted."""
    with pg_admin_connection() as admin:
        rows = admin.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        ).fetchall()
    return sorted(state for (state,) in rows)


def wait_for_no_pg_connections(application_name: str, within: float) -> None:
    """Return once no connection named ``application_name`` is left; fail after ``within`` s."""
    import time

    deadline = time.monotonic() + within
    while pg_states(application_name):
        if time.monotonic() > deadline:
            raise AssertionError(f"connections still open after {within}s: {pg_states(application_name)}")
        time.sleep(0.05)
