"""The fast route to MariaDB/MySQL columns: connectorx, which reads the binary protocol in Rust
and hands back Arrow record batches (6x faster than PyMySQL at a million rows).

* **Read-only, enforced by the server**: each read's connection first runs
  :func:`analysis.connections.read_only_statements` (``SET SESSION TRANSACTION READ ONLY``), so a
  write is refused with error 1792 whatever the Workbench's mode.
* **No bound parameters** in connectorx: the statement is compiled with its values as literals
  (SQLAlchemy's MySQL quoting, which follows the server's backslash-escape mode). A value with no
  literal form (bytes, JSON...) makes the route unavailable, and PyMySQL reads the query.
* **Stop button**: the SQL carries a marker comment; a cancel finds the connection running it in
  ``information_schema.PROCESSLIST`` and sends ``KILL QUERY`` from a connection of the engine's
  pool (connectorx does not expose its connection).
* **Streaming**: ``return_type="arrow_stream"`` yields batches of ``batch_rows`` as they arrive.

connectorx opens a connection per read (~3 ms), so small results keep PyMySQL's pooled route
(see :func:`analysis.read.routes.candidate_routes`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import typing as t
import urllib.parse
import uuid

import sqlalchemy as sa

from ..connections import read_only_statements
from ..errors import RouteUnavailable, first_line
from .cancel import interruptible

#: Rows per batch when the caller does not bound them.
BATCH_ROWS = 65_536
#: Results the server expects to be at most this long are read through PyMySQL's pooled
#: connection, which costs less than connectorx's new connection.
SMALL_RESULT_ROWS = 100
_DIALECTS = ("mysql", "mariadb")
#: URL query options connectorx cannot honour (sockets, TLS): those engines keep PyMySQL.
_UNSUPPORTED_OPTIONS = ("unix_socket", "ssl", "ssl_ca", "ssl_cert", "ssl_key", "ssl_verify_cert", "read_default_file")


def supports(engine: sa.Engine) -> bool:
    """Whether connectorx can read this engine's database (installed, and a TCP URL)."""
    if engine.dialect.name not in _DIALECTS:
        return False
    if "connectorx" in sys.modules:
        if sys.modules["connectorx"] is None:
            return False
    elif importlib.util.find_spec("connectorx") is None:
        return False
    return not any(key in engine.url.query for key in _UNSUPPORTED_OPTIONS) and engine.url.host is not None


def compile_literal(statement: sa.Executable, params: t.Mapping[str, t.Any], dialect: sa.Dialect) -> str:
    """The statement's SQL with every parameter written as a literal."""
    if params:
        statement = t.cast(t.Any, statement).params(**params)
    try:
        return str(t.cast(sa.ClauseElement, statement).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except (sa.exc.SQLAlchemyError, NotImplementedError, TypeError, ValueError) as e:
        raise RouteUnavailable(f"cannot write the parameters as literals: {e}") from e


def expected_rows(engine: sa.Engine, sql: str) -> int | None:
    """The server's estimate of the rows ``sql`` returns (``EXPLAIN``, one round trip on a pooled
    connection); ``None`` if it cannot say."""
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        try:
            cursor.execute("EXPLAIN " + sql)  # no parameters: the SQL is passed as it is
            names = [d[0].lower() for d in cursor.description or ()]
            plan = cursor.fetchall()
        finally:
            cursor.close()
            conn.rollback()
    except Exception:  # not explainable (a SHOW...): let the fast route try, or refuse it
        return None
    finally:
        conn.close()
    if "rows" not in names:
        return None
    estimate = 1
    for row in plan:
        value = row[names.index("rows")]
        if value is not None:
            estimate *= max(int(value), 1)  # nested loops: each table's rows per row of the previous
    return estimate


@contextlib.contextmanager
def open_reader(engine: sa.Engine, sql: str) -> t.Iterator[t.Any]:
    """Run ``sql`` through connectorx on a read-only connection; yield a reader of its batches
    (``schema``, ``read_next_batch()``). Ctrl-C stops it in the server.

    The whole result is fetched at once: connectorx's streaming reader holds the GIL while it
    waits for the server, so nothing could cancel it (no signal handler runs). Callers that
    need memory bounded by a chunk (``frames()``, exports) read through PyMySQL instead.
    """
    try:
        import connectorx
    except ImportError as e:
        raise RouteUnavailable("connectorx is not installed") from e
    marker = uuid.uuid4().hex
    marked = f"/* analysis {marker} */ {sql}"
    try:
        table = _driver_call(
            lambda: connectorx.read_sql(
                _connectorx_url(engine), marked, return_type="arrow",
                pre_execution_query=read_only_statements(engine.dialect.name),
            ),
            _killer(engine, marker),
        )
    except RuntimeError as e:  # connectorx reports the server's errors as RuntimeError
        raise RouteUnavailable(f"the driver refused the statement: {first_line(e)}") from e
    yield _TableReader(table)


class _TableReader:
    """A fetched table handed out batch by batch, each batch released once handed out."""

    def __init__(self, table: t.Any) -> None:
        self.schema = table.schema
        self._batches = table.to_batches(max_chunksize=BATCH_ROWS)
        self._batches.reverse()

    def read_next_batch(self) -> t.Any:
        if not self._batches:
            raise StopIteration
        return self._batches.pop()


def _driver_call(run: t.Callable[[], t.Any], cancel: t.Callable[[], None]) -> t.Any:
    """``run()`` through :func:`interruptible`, with a Rust panic (how connectorx reports a
    server error midway; a BaseException) turned into a RuntimeError the route machine handles."""
    try:
        return interruptible(run, cancel)
    except (KeyboardInterrupt, SystemExit, GeneratorExit, StopIteration):
        raise
    except BaseException as e:
        if type(e).__name__ == "PanicException":
            raise RuntimeError(first_line(e)) from e
        raise


def _killer(engine: sa.Engine, marker: str) -> t.Callable[[], None]:
    def kill() -> None:
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                    (f"%analysis {marker}%",),
                )
                for (process_id,) in cursor.fetchall():
                    cursor.execute(f"KILL QUERY {int(process_id)}")
            finally:
                cursor.close()
        finally:
            conn.close()

    return kill


def _connectorx_url(engine: sa.Engine) -> str:
    url = engine.url
    auth = urllib.parse.quote(url.username or "", safe="")
    if url.password is not None:
        auth += ":" + urllib.parse.quote(str(url.password), safe="")
    host = url.host or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"mysql://{auth}@{host}:{url.port or 3306}/{urllib.parse.quote(url.database or '', safe='')}"
