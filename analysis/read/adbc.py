"""The fast route to columns: Arrow-native ADBC drivers on connections of their own.

SQLAlchemy and the DBAPI drivers build one Python object per value; ADBC drivers hand back
Arrow columns built in C (SQLite: ``adbc-driver-sqlite``; PostgreSQL: ``adbc-driver-postgresql``,
which reads with ``COPY ... TO STDOUT (FORMAT binary)``). They are default dependencies; when a
driver is not installed, cannot open the database, or refuses the statement,
:class:`~analysis.errors.RouteUnavailable` is raised and the caller reads through SQLAlchemy
instead.

SQLite's driver runs in a helper process (:mod:`analysis.read.sqlite_helper`): in this process
its bundled copy of SQLite would drop the file locks of the app's own connections.

The driver uses connections of its own, so this route is only used when the session has no
uncommitted writes (see :mod:`analysis.connections`). They are always read-only, whatever the
Workbench's mode: SQLite is opened with ``mode=ro``, PostgreSQL gets
:func:`analysis.connections.read_only_statements`. A PostgreSQL connection costs ~90 ms to open,
more than a small query takes, so one is kept per engine between reads: in autocommit (no
transaction stays open between reads or cells), never shared by two reads at once, replaced when
it died (a server restart), and closed by :func:`close_connections` (``Workbench.close()``) and
at interpreter exit; a killed process's connections die with it.

Every blocking driver call runs through :func:`analysis.read.cancel.interruptible`, so Ctrl-C
sends PostgreSQL a cancel request and the cell stops at once.
"""

from __future__ import annotations

import atexit
import contextlib
import decimal
import functools
import importlib.util
import os
import sys
import threading
import typing as t
import urllib.parse

import sqlalchemy as sa

from .. import echo
from ..connections import import_snapshot_statements, read_only_statements
from ..errors import HelperError, RouteUnavailable
from .cancel import interruptible

if t.TYPE_CHECKING:
    import pyarrow as pa

#: Rows per Arrow batch the SQLite driver builds (its default, 1024, makes many tiny chunks).
SQLITE_BATCH_ROWS = 32_768
#: Batch size that makes the whole result one batch, so the driver types columns from all rows.
SQLITE_ONE_BATCH = 2**30  # the largest the driver accepts


def supports(engine: sa.Engine) -> bool:
    """Whether an Arrow-native driver exists for this engine's database (and is installed)."""
    name = engine.dialect.name
    try:
        if name == "sqlite":
            # Look, don't import: the driver runs in a helper process (sqlite_helper).
            return (
                _installed("adbc_driver_sqlite.dbapi")
                and _installed("nanoarrow")
                and _sqlite_path(engine) is not None
            )
        if name == "postgresql":
            import adbc_driver_postgresql.dbapi  # noqa: F401

            return True
    except ImportError:
        return False
    return False


def _installed(module: str) -> bool:
    """Whether ``module`` could be imported (``sys.modules[module] = None`` means "blocked")."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module.partition(".")[0]) is not None


def compile_statement(
    statement: sa.Executable, params: t.Mapping[str, t.Any], dialect: sa.Dialect
) -> tuple[str, tuple[t.Any, ...]]:
    """SQL text and positional parameter values for the driver, with SQLAlchemy's bind
    processing applied (timestamps to the stored format, enums to names...)."""
    compiled: t.Any = t.cast(sa.ClauseElement, statement).compile(dialect=dialect)
    state = compiled.construct_expanded_state(dict(params))
    # The expanded state lists processors only for expanded (IN) parameters; the others come
    # from each bound parameter's type, as SQLAlchemy itself gets them.
    processors = {
        **{name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()},
        **state.processors,
    }
    values = {
        key: processors[key](value) if processors.get(key) else value
        for key, value in state.parameters.items()
    }
    order = state.positiontup or ()
    return state.statement, tuple(_driver_value(values[key]) for key in order)


def _driver_value(value: t.Any) -> t.Any:
    """Decimals as text: the ADBC drivers cannot bind them, and the SQL casts the text back
    (SQLAlchemy renders ``$1::NUMERIC`` on PostgreSQL)."""
    return str(value) if isinstance(value, decimal.Decimal) else value


def positional_dialect(engine: sa.Engine) -> sa.Dialect:
    """A dialect like the engine's that renders the placeholders the ADBC driver expects."""
    if engine.dialect.name == "postgresql":
        dialect_class: t.Any = type(engine.dialect)
        dialect: sa.Dialect = dialect_class(paramstyle="numeric_dollar")
        dialect.server_version_info = engine.dialect.server_version_info
        return dialect
    return engine.dialect  # SQLite: qmark, as ADBC's SQLite driver wants


@contextlib.contextmanager
def open_reader(
    engine: sa.Engine, sql: str, parameters: tuple[t.Any, ...], *, application_name: str = "analysis",
    batch_rows: int | None = None, snapshot: str | None = None,
) -> t.Iterator[t.Any]:
    """Run ``sql`` on a read-only ADBC connection and yield a reader of its batches
    (``schema``, ``read_next_batch()``).

    SQLite is read in a helper process (see :mod:`analysis.read.sqlite_helper` for why);
    PostgreSQL on the engine's kept connection, given back when the block ends. ``snapshot``
    (PostgreSQL) is an exported snapshot id the statement's transaction imports; that read
    runs on a connection of its own, closed at the end, which ends its transaction.
    """
    name = engine.dialect.name
    echo.report(engine, sql, parameters, "Arrow-native read")
    if name == "sqlite":
        with _sqlite_reader(engine, sql, parameters, batch_rows or SQLITE_BATCH_ROWS) as reader:
            yield reader
        return
    if name != "postgresql":
        raise RouteUnavailable(f"no Arrow-native driver for {name}")
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError as e:
        raise RouteUnavailable(f"{e.name} is not installed") from e
    key = (id(engine), _libpq_conninfo(engine, application_name))
    kept = _kept.take(key) if snapshot is None else None
    while True:
        conn = kept if kept is not None else _connect_postgresql(engine, application_name)
        lease = _Lease(conn, keep=snapshot is None)
        cursor = conn.cursor()
        try:
            reader = interruptible(
                functools.partial(_execute, cursor, sql, parameters, snapshot), conn.adbc_cancel, abandon=lease.abandon
            )
        except KeyboardInterrupt:
            lease.finish(cursor, key)
            raise
        except Exception as e:
            lease.discard(cursor)
            if kept is not None:
                kept = None  # the kept connection may have died (a server restart): try a fresh one
                continue
            raise RouteUnavailable(f"the driver refused the statement: {e}") from e
        break
    try:
        yield _Reader(reader, conn.adbc_cancel, lease)
        lease.done = True
    finally:
        lease.finish(cursor, key)


def _execute(cursor: t.Any, sql: str, parameters: tuple[t.Any, ...], snapshot: str | None = None) -> t.Any:
    if snapshot is not None:
        # The connection is in autocommit: a transaction of our own, ended by closing it.
        for statement in ["BEGIN", *import_snapshot_statements(snapshot)]:
            cursor.execute(statement)
    cursor.execute(sql, parameters or None)
    return cursor.fetch_record_batch()


class _Reader:
    """A record batch reader whose every read Ctrl-C cancels in the database."""

    def __init__(self, reader: t.Any, cancel: t.Callable[[], None], lease: _Lease) -> None:
        self._reader = reader
        self._cancel = cancel
        self._lease = lease
        self.schema = reader.schema

    def read_next_batch(self) -> pa.RecordBatch:
        return interruptible(self._reader.read_next_batch, self._cancel, abandon=self._lease.abandon)


class _Lease:
    """One read's use of a connection: given back to the kept ones only if the read ended cleanly
    (read to the end, or stopped early with the driver's agreement), else closed."""

    def __init__(self, conn: t.Any, *, keep: bool = True) -> None:
        self.conn = conn
        self.keep = keep
        self.done = False
        self.abandoned = False

    def abandon(self) -> None:
        self.abandoned = True

    def discard(self, cursor: t.Any) -> None:
        """Close the cursor and the connection after a driver error (which may have been the
        connection's death; the caller raises its own error about it)."""
        for close in (cursor.close, self.conn.close):
            with contextlib.suppress(Exception):
                close()

    def finish(self, cursor: t.Any, key: tuple[int, str]) -> None:
        if self.abandoned:
            # A worker thread may still be inside the driver: leave the connection to it (it is
            # closed when the process ends) rather than close it under its feet.
            return
        try:
            if not self.done:
                # Stopped before the end (frames() closed early, an error, Ctrl-C): without a
                # cancel, the next statement would wait for the rest of the COPY to drain.
                self.conn.adbc_cancel()
            cursor.close()
        except Exception:
            self.conn.close()
            raise
        if self.keep:
            _kept.give_back(key, self.conn)
        else:
            self.conn.close()


class _Kept:
    """The idle PostgreSQL ADBC connections, one per engine and connection string."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[int, str], t.Any] = {}

    def take(self, key: tuple[int, str]) -> t.Any:
        with self._lock:
            return self._idle.pop(key, None)

    def give_back(self, key: tuple[int, str], conn: t.Any) -> None:
        with self._lock:
            if key not in self._idle:
                self._idle[key] = conn
                return
        conn.close()  # another read kept one meanwhile (an open frames() iterator): one is enough

    def close(self, engine: sa.Engine | None = None) -> None:
        with self._lock:
            keys = [k for k in self._idle if engine is None or k[0] == id(engine)]
            conns = [self._idle.pop(k) for k in keys]
        for conn in conns:
            with contextlib.suppress(Exception):  # the server may be gone already
                conn.close()


_kept = _Kept()
atexit.register(_kept.close)


def close_connections(engine: sa.Engine) -> None:
    """Close the ADBC connections kept for ``engine`` (idempotent)."""
    _kept.close(engine)


@contextlib.contextmanager
def _sqlite_reader(
    engine: sa.Engine, sql: str, parameters: tuple[t.Any, ...], batch_rows: int
) -> t.Iterator[pa.RecordBatchReader]:
    from . import sqlite_helper

    path = _sqlite_path(engine)
    if path is None:
        raise RouteUnavailable("not a SQLite database file")
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    with contextlib.ExitStack() as stack:
        try:
            reader = stack.enter_context(sqlite_helper.read(uri, sql, parameters, batch_rows=batch_rows))
        except HelperError as e:  # let SQLAlchemy run it and report it
            raise RouteUnavailable(f"the driver refused the statement: {e}") from e
        # Errors while reading (a type mismatch midway) reach the caller as they are.
        yield reader


def warm_up(engine: sa.Engine) -> None:
    """Start what the first fast read of ``engine`` would wait for (SQLite's reader process)."""
    if engine.dialect.name == "sqlite" and supports(engine):
        from . import sqlite_helper

        sqlite_helper.warm_up()


def is_type_mismatch(error: BaseException) -> bool:
    """ADBC's SQLite driver met a value of another type than it inferred from the first batch."""
    return "Type mismatch" in str(error)


def _sqlite_path(engine: sa.Engine) -> str | None:
    url = engine.url
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("uri"):
        return None
    path = os.path.abspath(database)
    return path if os.path.exists(path) else None


def _connect_postgresql(engine: sa.Engine, application_name: str) -> t.Any:
    import adbc_driver_postgresql.dbapi

    try:
        conn = adbc_driver_postgresql.dbapi.connect(_libpq_conninfo(engine, application_name), autocommit=True)
    except Exception as e:
        raise RouteUnavailable(f"cannot connect with ADBC: {e}") from e
    try:
        with conn.cursor() as cursor:
            for sql in read_only_statements("postgresql"):
                cursor.execute(sql)
    except Exception as e:
        conn.close()
        raise RouteUnavailable(f"cannot make the ADBC connection read-only: {e}") from e
    return conn


def _libpq_conninfo(engine: sa.Engine, application_name: str) -> str:
    """A libpq connection string for the engine's database, named for ``pg_stat_activity``."""
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    params: dict[str, t.Any] = {
        key: value for key, value in kwargs.items() if isinstance(value, (str, int)) and not isinstance(value, bool)
    }
    if engine.url.password is not None:
        params["password"] = engine.url.password
    params["application_name"] = application_name[:63]
    return " ".join(f"{key}={_quote(str(value))}" for key, value in params.items())


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
