"""The read-only rule, which connection a read runs on, and whether a session has written.

Everything the toolkit does to an app's connections lives here, so the rule has one home:

* **Read-only**, refused by the database itself: SQLite ``PRAGMA query_only``, PostgreSQL
  ``default_transaction_read_only``, MariaDB/MySQL ``SET SESSION TRANSACTION READ ONLY``
  (:func:`read_only_statements`, applied by :class:`EngineGuard` to every connection of a
  read-only Workbench, and by the Arrow drivers to theirs). A refused write becomes
  :class:`~analysis.errors.ReadOnlyError` with :data:`READ_ONLY_HINT`. A separate read
  connection is read-only even on a writable Workbench (:func:`make_transaction_read_only`).
* **Which connection a read uses** (:func:`read_connection`): a session that has written must
  see its own writes, so it serves the read itself; otherwise the read gets a connection of
  its own, rolled back and returned to the pool before the caller gets its result.
* **Snapshots** (``wb.snapshot()``, :mod:`analysis.snapshot`): while a session holds one
  (:data:`SNAPSHOT_KEY`), a PostgreSQL read on a connection of its own first imports the
  exported snapshot (:func:`import_snapshot_statements`); on SQLite and MariaDB, whose
  snapshots cannot be shared, reads go through the session's own connection, which holds it
  (:func:`reads_through_session`).
* **Whether a session has written** (:func:`session_has_writes`): statements that may write
  mark their connection (:data:`WRITES_KEY` in ``Connection.info``), and :class:`SessionGuard`
  learns which connections a session's transaction holds from the ``after_begin`` event.
* **Is this SQL a read** (:func:`is_read_statement`), for raw SQL given to ``frame()`` and for
  the write tracking.
* An ``application_name`` on PostgreSQL connections, and a ping when a connection leaves the
  pool, so one that died while a notebook sat idle is replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from .errors import DatabaseUnavailableError, QueryError, ReadOnlyError, first_line

AnySession = t.Union[Session, "scoped_session[t.Any]"]

#: ``Connection.info`` key: the connection's open transaction may hold uncommitted writes.
WRITES_KEY = "analysis.writes"
#: ``Session.info`` key: the snapshot each engine's reads see (engine -> :class:`Snapshot`).
SNAPSHOT_KEY = "analysis.snapshot"
#: ``Session.info`` key: the connections the session's current transaction has begun.
CONNECTIONS_KEY = "analysis.connections"

READ_ONLY_HINT = (
    "This connection is read-only, so the database refused the write. To change data,"
    " connect with writable=True (analysis.connect(..., writable=True) or %connect --writable)."
)
_FLUSH_REFUSED = (
    "This connection is read-only, so the changes were not written. To change data, connect"
    " with writable=True (analysis.connect(..., writable=True) or %connect --writable);"
    " db.session.rollback() discards the changes."
)
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")
_READ_SQL = re.compile(r"^\s*(\(|select|with|values|table|show|explain|pragma|describe|desc)\b", re.I)
# SQLSTATE 25006 (PostgreSQL), errors 1792 and 1290 (MariaDB/MySQL), SQLITE_READONLY (SQLite).
_MYSQL_READ_ONLY_CODES = {1792, 1290}


def is_read_statement(sql: str) -> bool:
    """Whether raw SQL is a statement that reads (SELECT, WITH, VALUES, SHOW, EXPLAIN...)."""
    return _READ_SQL.match(sql) is not None


def read_only_statements(dialect_name: str) -> list[str]:
    """SQL that makes a new connection of this backend refuse writes for its whole life."""
    if dialect_name == "postgresql":
        return ["SET SESSION default_transaction_read_only = on"]
    if dialect_name in ("mysql", "mariadb"):
        return ["SET SESSION TRANSACTION READ ONLY"]
    if dialect_name == "sqlite":
        return ["PRAGMA query_only = ON"]
    return []


#: SQLSTATE classes and codes of a connection that went away: 08 (connection exception), 57P01
#: admin shutdown (pg_terminate_backend, a server stop), 57P02 crash shutdown, 57P03 cannot
#: connect now (starting up or shutting down).
_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")
#: MariaDB/MySQL client errors: 2002/2003 cannot connect, 2006 gone away, 2013 lost during query,
#: 1053 server shutdown, 1927 connection killed.
_MYSQL_LOST_CODES = {1053, 1927, 2002, 2003, 2006, 2013}
_LOST_MESSAGES = re.compile(
    r"server closed the connection|terminating connection|connection refused|could not connect"
    r"|database system is (shutting down|starting up)|connection (is )?(closed|lost|reset)"
    r"|lost connection|server has gone away|consuming input failed|no connection to the server",
    re.I,
)


def is_connection_lost(error: BaseException | None) -> bool:
    """Whether an error means the database went away (killed connection, server restart or
    down), so the same work can simply be retried once it is back: not a bug, not bad SQL."""
    if error is None:
        return False
    if isinstance(error, sa.exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return is_connection_lost(error.orig)
    sqlstate = getattr(error, "sqlstate", None) or getattr(getattr(error, "diag", None), "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_LOST_SQLSTATES):
        return True
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_LOST_CODES:
        return True
    return bool(_LOST_MESSAGES.search(str(error)))


def connection_lost_error(
    error: BaseException, *, consequence: str = "Nothing was changed"
) -> DatabaseUnavailableError:
    """The one-line error for work cut short because the database went away.

    ``consequence`` says what became of the work (an export: the file was left as it was).
    """
    orig = error.orig if isinstance(error, sa.exc.DBAPIError) and error.orig is not None else error
    return DatabaseUnavailableError(
        f"The database connection was lost ({first_line(orig)}). {consequence}; run it again"
        " once the database is back: the next query opens a new connection by itself.",
        lost=True,
    )


def is_read_only_violation(error: BaseException | None) -> bool:
    """Whether a DBAPI error means "this connection may not write"."""
    if error is None:
        return False
    sqlstate = getattr(error, "sqlstate", None) or getattr(getattr(error, "diag", None), "sqlstate", None)
    if sqlstate == "25006":
        return True
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_READ_ONLY_CODES:
        return True
    if type(error).__module__.startswith("sqlite3"):
        return "readonly database" in str(error)
    return False


class EngineGuard:
    """Applies the toolkit's connection settings to one engine, and removes them again."""

    def __init__(self, engine: sa.Engine, *, writable: bool, application_name: str) -> None:
        self.engine = engine
        self.writable = writable
        self.application_name = application_name
        self._listeners: list[tuple[t.Any, str, t.Callable[..., t.Any]]] = []

    def install(self) -> None:
        self._listen(self.engine, "connect", self._on_connect)
        self._listen(self.engine, "checkout", self._on_checkout)
        self._listen(self.engine, "handle_error", self._on_error)
        self._listen(self.engine, "after_cursor_execute", self._on_execute)
        self._listen(self.engine, "commit", self._on_transaction_end)
        self._listen(self.engine, "rollback", self._on_transaction_end)
        self._listen(self.engine, "checkin", self._on_checkin)
        # The factory may have opened connections (e.g. to create tables) before these
        # settings existed: start from a fresh pool so every connection has them.
        self.engine.dispose()

    def remove(self) -> None:
        for target, name, fn in self._listeners:
            if sa.event.contains(target, name, fn):
                sa.event.remove(target, name, fn)
        self._listeners.clear()

    def _listen(self, target: t.Any, name: str, fn: t.Callable[..., t.Any]) -> None:
        sa.event.listen(target, name, fn)
        self._listeners.append((target, name, fn))

    def _on_connect(self, dbapi_connection: t.Any, connection_record: t.Any) -> None:
        dialect = self.engine.dialect.name
        statements: list[tuple[str, tuple[t.Any, ...]]] = []
        if dialect == "postgresql":
            statements.append(("SELECT set_config('application_name', %s, false)", (self.application_name,)))
        if not self.writable:
            statements += [(sql, ()) for sql in read_only_statements(dialect)]
        if not statements:
            return
        cursor = dbapi_connection.cursor()
        try:
            for sql, params in statements:
                cursor.execute(sql, params) if params else cursor.execute(sql)
        finally:
            cursor.close()
        if dialect != "sqlite":
            # The settings are session-wide; end the transaction the driver opened for them.
            dbapi_connection.commit()

    def _on_checkout(self, dbapi_connection: t.Any, connection_record: t.Any, connection_proxy: t.Any) -> None:
        """Ping a connection as it leaves the pool: one that died while the notebook sat idle
        (a server restart) is replaced by the pool instead of failing the next query."""
        if self.engine.dialect.name == "sqlite":
            return
        try:
            self.engine.dialect.do_ping(dbapi_connection)
        except self.engine.dialect.loaded_dbapi.Error as e:
            if self.engine.dialect.is_disconnect(e, dbapi_connection, None):
                raise sa.exc.DisconnectionError(str(e)) from e
            raise

    def _on_error(self, context: sa.engine.ExceptionContext) -> None:
        if not self.writable and is_read_only_violation(context.original_exception):
            raise ReadOnlyError(READ_ONLY_HINT) from context.sqlalchemy_exception

    def _on_execute(
        self, conn: sa.Connection, cursor: t.Any, statement: str, parameters: t.Any,
        context: t.Any, executemany: bool,
    ) -> None:
        if context is not None and (context.isinsert or context.isupdate or context.isdelete):
            conn.info[WRITES_KEY] = True
        elif not is_read_statement(statement):
            conn.info[WRITES_KEY] = True

    def _on_transaction_end(self, conn: sa.Connection) -> None:
        if conn.invalidated:  # lost: nothing of it is left to track (and .info would reconnect)
            return
        conn.info.pop(WRITES_KEY, None)

    def _on_checkin(self, dbapi_connection: t.Any, connection_record: t.Any) -> None:
        # The pool rolls back on return, so nothing written can remain.
        connection_record.info.pop(WRITES_KEY, None)


class SessionGuard:
    """What the toolkit does to a Flask-SQLAlchemy session while it holds it.

    It records which connections the session's transaction has begun (``after_begin``; the
    session keeps them in no public place) and, on a read-only Workbench, refuses a flush
    with a message saying how to write instead of letting the database refuse it mid-flush.
    ``is_own`` tells the Workbench's session from other sessions of the same factory (a job's).
    """

    def __init__(
        self, target: scoped_session[t.Any], *, writable: bool, is_own: t.Callable[[t.Any], bool]
    ) -> None:
        self.target = target
        self.writable = writable
        self.is_own = is_own
        self._listeners: list[tuple[t.Any, str, t.Callable[..., t.Any]]] = []

    def install(self) -> None:
        for name, fn in (
            ("after_begin", _remember_connection),
            ("after_transaction_end", _forget_connections),
            ("before_flush", self._refuse_flush_when_read_only),
        ):
            sa.event.listen(self.target, name, fn)
            self._listeners.append((self.target, name, fn))

    def remove(self) -> None:
        for target, name, fn in self._listeners:
            if sa.event.contains(target, name, fn):
                sa.event.remove(target, name, fn)
        self._listeners.clear()

    def _refuse_flush_when_read_only(self, session: Session, flush_context: t.Any, instances: t.Any) -> None:
        if self.writable or not self.is_own(session):
            return
        if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
            raise ReadOnlyError(_FLUSH_REFUSED)


def _remember_connection(session: Session, transaction: t.Any, connection: sa.Connection) -> None:
    session.info.setdefault(CONNECTIONS_KEY, []).append(connection)


def _forget_connections(session: Session, transaction: t.Any) -> None:
    if transaction.parent is None:  # the root transaction ended: its connections are released
        session.info.pop(CONNECTIONS_KEY, None)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The database snapshot reads of one engine see.

    ``exported`` is a PostgreSQL snapshot id (``pg_export_snapshot()``) that other connections
    and processes import; ``None`` means the snapshot lives in the session's own transaction
    (SQLite, MariaDB), so reads must go through that connection.
    """

    dialect_name: str
    exported: str | None = None


def snapshot_for(session: AnySession, engine: sa.Engine) -> Snapshot | None:
    """The snapshot reads of ``engine`` through ``session`` must see, if any."""
    held: dict[sa.Engine, Snapshot] = plain_session(session).info.get(SNAPSHOT_KEY) or {}
    return held.get(engine)


def reads_through_session(session: AnySession, engine: sa.Engine) -> bool:
    """Whether a read of ``engine`` must use the session's own connection: to see the session's
    uncommitted writes, or because that connection holds the snapshot (SQLite, MariaDB)."""
    snapshot = snapshot_for(session, engine)
    return (snapshot is not None and snapshot.exported is None) or session_has_writes(session)


def import_snapshot_statements(snapshot_id: str) -> list[str]:
    """PostgreSQL: SQL that makes a new transaction see the exported snapshot ``snapshot_id``
    (before its first query), read-only."""
    if not _SNAPSHOT_ID.match(snapshot_id):
        raise ValueError(f"not a PostgreSQL snapshot id: {snapshot_id!r}")
    return [
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        f"SET TRANSACTION SNAPSHOT '{snapshot_id}'",
        "SET TRANSACTION READ ONLY",
    ]


def plain_session(session: AnySession) -> Session:
    """The :class:`~sqlalchemy.orm.Session` behind a ``scoped_session`` (``db.session``)."""
    return session() if isinstance(session, scoped_session) else session


def session_connections(session: AnySession) -> list[sa.Connection]:
    """The connections the session's open transaction holds (as seen by :class:`SessionGuard`)."""
    sess = plain_session(session)
    if not sess.in_transaction():
        return []
    return list(sess.info.get(CONNECTIONS_KEY, ()))


def connection_has_writes(conn: sa.Connection) -> bool:
    """Whether ``conn``'s open transaction may hold uncommitted writes.

    An invalidated connection (its DBAPI connection was lost or cancelled mid-query) holds
    nothing any more: the server rolled its transaction back when it went away.
    """
    if conn.closed or conn.invalidated:
        return False
    return bool(conn.info.get(WRITES_KEY))


def session_has_writes(session: AnySession, *, flush: bool = True) -> bool:
    """Whether reads must go through ``session``'s connection to see its own writes.

    Changes waiting in the session are flushed first (as the ORM's autoflush does before a
    query), so a read-only Workbench refuses them with the same ``ReadOnlyError`` an ORM query
    would raise.
    """
    sess = plain_session(session)
    if flush and sess.autoflush and (sess.new or sess.deleted or sess.dirty):
        sess.flush()
    return any(connection_has_writes(conn) for conn in session_connections(sess))


def bind_for(session: AnySession, statement: sa.Executable | None) -> sa.Engine:
    """The engine to run ``statement`` on: the database its tables live on.

    Each table's bind comes from the session, as Flask-SQLAlchemy's ``Session.get_bind`` gives
    it for a table (the bind key its MetaData carries). The session itself looks only at the
    first entity of an ORM query, or at a lone table, so a plain ``select()`` of a table on a
    bind would otherwise run on the default database. A statement without tables (raw SQL)
    runs on the default one. A statement whose tables live on several databases cannot run
    anywhere: :class:`~analysis.errors.QueryError` names them.
    """
    sess = plain_session(session)
    by_engine: dict[sa.Engine, list[sa.Table]] = {}
    for table in statement_tables(statement):
        by_engine.setdefault(_engine(sess.get_bind(clause=table)), []).append(table)
    if len(by_engine) > 1:
        places = sorted(
            (_bind_key(table) is not None, _bind_key(table) or "", table.fullname)
            for tables in by_engine.values()
            for table in tables
        )
        where = ", ".join(
            f"{name} ({'the default database' if not has_key else f'bind {key!r}'})" for has_key, key, name in places
        )
        raise QueryError(
            f"This query reads tables of more than one database: {where}. A query runs on one"
            " database: read each part with its own frame() and combine the DataFrames with"
            " pandas (pd.merge)."
        )
    if by_engine:
        return next(iter(by_engine))
    return _engine(sess.get_bind())


def statement_tables(statement: sa.Executable | None) -> list[sa.Table]:
    """The tables ``statement`` reads or writes, in the order they appear, each once."""
    if statement is None:
        return []
    found: dict[sa.Table, None] = {}
    for element in sa.sql.visitors.iterate(t.cast(sa.ClauseElement, statement)):
        if isinstance(element, sa.Table):
            found.setdefault(element, None)
        elif isinstance(element, sa.Column) and isinstance(element.table, sa.Table):
            found.setdefault(element.table, None)
    return list(found)


def _bind_key(table: sa.Table) -> str | None:
    """The Flask-SQLAlchemy bind key of ``table`` (``None``: the default database)."""
    key = table.metadata.info.get("bind_key")
    return key if isinstance(key, str) else None


def _engine(bind: sa.Engine | sa.Connection) -> sa.Engine:
    return bind.engine if isinstance(bind, sa.Connection) else bind


@contextlib.contextmanager
def read_connection(session: AnySession, statement: sa.Executable | None = None) -> t.Iterator[sa.Connection]:
    """A connection to run a read on, chosen as the module docstring says.

    The session's connection is used as-is and left to the session; a separate connection is
    read-only, and rolled back and closed when the block ends, also on error.
    """
    sess = plain_session(session)
    engine = bind_for(sess, statement)
    if reads_through_session(sess, engine):
        yield sess.connection(bind_arguments={"bind": engine})
        return
    snapshot = snapshot_for(sess, engine)
    conn = engine.connect()
    restore: str | None = None
    try:
        if snapshot is not None and snapshot.exported is not None:
            for sql in import_snapshot_statements(snapshot.exported):
                conn.exec_driver_sql(sql)
        restore = make_transaction_read_only(conn)
        yield conn
    finally:
        try:
            conn.rollback()
            if restore is not None:
                conn.exec_driver_sql(restore)
        finally:
            conn.close()


def make_transaction_read_only(conn: sa.Connection) -> str | None:
    """Make a separate connection's transaction read-only, even on a writable Workbench: a
    query is only meant to read, and the database should refuse anything else (SQLite's driver
    would even autocommit a ``WITH ... DELETE``). Returns SQL that undoes it, if any."""
    name = conn.dialect.name
    if name == "sqlite":
        if conn.exec_driver_sql("PRAGMA query_only").scalar():
            return None
        conn.exec_driver_sql("PRAGMA query_only = ON")
        return "PRAGMA query_only = OFF"
    if name in ("postgresql", "mysql", "mariadb"):
        # The next (PostgreSQL: the current) transaction only: nothing to undo.
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    return None
