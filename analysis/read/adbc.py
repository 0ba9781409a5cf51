"""The fast route to columns: Arrow-native ADBC drivers on connections of their own.

SQLAlchemy and the DBAPI drivers build one Python object per value; ADBC drivers hand back
Arrow columns built in C (SQLite: ``adbc-driver-sqlite``; PostgreSQL: ``adbc-driver-postgresql``,
which reads with ``COPY ... TO STDOUT (FORMAT binary)``). They are optional (the ``fast``
extra): when a driver is not installed, cannot open the database, or refuses the statement,
:class:`~analysis.errors.RouteUnavailable` is raised and the caller reads through SQLAlchemy
instead.

SQLite's driver runs in a helper process (:mod:`analysis.read.sqlite_helper`): in this process
its bundled copy of SQLite would drop the file locks of the app's own connections.

The driver opens its own connection, so this route is only used when the session has no
uncommitted writes (see :mod:`analysis.connections`). That connection is always read-only,
whatever the Workbench's mode: SQLite is opened with ``mode=ro``, PostgreSQL gets
:func:`analysis.connections.read_only_statements`; it runs in autocommit (no transaction is
left open) and is closed before the call returns.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib.util
import os
import sys
import typing as t
import urllib.parse

import sqlalchemy as sa

from ..connections import import_snapshot_statements, read_only_statements
from ..errors import HelperError, RouteUnavailable

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
) -> t.Iterator[pa.RecordBatchReader]:
    """Run ``sql`` on a fresh read-only ADBC connection and yield its batches.

    The connection is closed when the block ends, whether the batches were all read or not.
    SQLite is read in a helper process (see :mod:`analysis.read.sqlite_helper` for why).
    ``snapshot`` (PostgreSQL) is an exported snapshot id the statement's transaction imports.
    """
    name = engine.dialect.name
    if name == "sqlite":
        with _sqlite_reader(engine, sql, parameters, batch_rows or SQLITE_BATCH_ROWS) as reader:
            yield reader
        return
    try:
        if name == "postgresql":
            conn = _connect_postgresql(engine, application_name)
        else:
            raise RouteUnavailable(f"no Arrow-native driver for {name}")
    except ImportError as e:
        raise RouteUnavailable(f"{e.name} is not installed") from e
    try:
        cursor = conn.cursor()
        try:
            try:
                if snapshot is not None:
                    # The connection is in autocommit: a transaction of our own, ended by close().
                    for statement in ["BEGIN", *import_snapshot_statements(snapshot)]:
                        cursor.execute(statement)
                cursor.execute(sql, parameters or None)
                reader = cursor.fetch_record_batch()
            except Exception as e:  # driver errors: let SQLAlchemy run it and report it
                raise RouteUnavailable(f"the driver refused the statement: {e}") from e
            yield reader
        finally:
            cursor.close()
    finally:
        conn.close()


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
