"""What the toolkit does to an app's engine while it holds it.

* Read-only connections, refused by the database itself: SQLite ``PRAGMA query_only``,
  PostgreSQL ``default_transaction_read_only``, MariaDB/MySQL ``SET SESSION TRANSACTION READ
  ONLY``. A refused write becomes :class:`~analysis.errors.ReadOnlyError`.
* An ``application_name`` on PostgreSQL connections, so ``pg_stat_activity`` shows whose they are.
* Pre-ping on checkout, so a connection that died while a notebook sat idle is replaced.
* Tracking of statements that may have written, so the per-cell release never discards them.

Everything is undone by :meth:`EngineGuard.remove`.
"""

from __future__ import annotations

import re
import typing as t

import sqlalchemy as sa

from .errors import ReadOnlyError

WRITES_KEY = "analysis.writes"

_READ_ONLY_HINT = (
    "This connection is read-only, so the database refused the write. To change data,"
    " connect with writable=True (analysis.connect(..., writable=True) or %connect --writable)."
)
_READ_KEYWORDS = re.compile(r"^\s*(\(|select|with|show|explain|pragma|values|describe|table)\b", re.I)
# SQLSTATE 25006 (PostgreSQL), error 1792 (MariaDB/MySQL), SQLITE_READONLY (SQLite).
_MYSQL_READ_ONLY_CODES = {1792, 1290}


class EngineGuard:
    """Applies the toolkit's connection settings to one engine, and removes them again."""

    def __init__(self, engine: sa.Engine, *, writable: bool, application_name: str) -> None:
        self.engine = engine
        self.writable = writable
        self.application_name = application_name
        self._listeners: list[tuple[t.Any, str, t.Callable[..., t.Any]]] = []
        self._old_pre_ping = engine.pool._pre_ping

    def install(self) -> None:
        self._listen(self.engine, "connect", self._on_connect)
        self._listen(self.engine, "handle_error", self._on_error)
        self._listen(self.engine, "after_cursor_execute", self._on_execute)
        self._listen(self.engine, "commit", self._on_transaction_end)
        self._listen(self.engine, "rollback", self._on_transaction_end)
        self._listen(self.engine, "checkin", self._on_checkin)
        # The factory may have opened connections (e.g. to create tables) before these
        # settings existed: start from a fresh pool so every connection has them.
        self.engine.pool._pre_ping = True
        self.engine.dispose()

    def remove(self) -> None:
        for target, name, fn in self._listeners:
            if sa.event.contains(target, name, fn):
                sa.event.remove(target, name, fn)
        self._listeners.clear()
        self.engine.pool._pre_ping = self._old_pre_ping

    def _listen(self, target: t.Any, name: str, fn: t.Callable[..., t.Any]) -> None:
        sa.event.listen(target, name, fn)
        self._listeners.append((target, name, fn))

    def _on_connect(self, dbapi_connection: t.Any, connection_record: t.Any) -> None:
        dialect = self.engine.dialect.name
        statements: list[tuple[str, tuple[t.Any, ...]]] = []
        if dialect == "postgresql":
            statements.append(("SELECT set_config('application_name', %s, false)", (self.application_name,)))
            if not self.writable:
                statements.append(("SET SESSION default_transaction_read_only = on", ()))
        elif dialect in ("mysql", "mariadb"):
            if not self.writable:
                statements.append(("SET SESSION TRANSACTION READ ONLY", ()))
        elif dialect == "sqlite":
            if not self.writable:
                statements.append(("PRAGMA query_only = ON", ()))
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

    def _on_error(self, context: sa.engine.ExceptionContext) -> None:
        if not self.writable and is_read_only_violation(context.original_exception):
            raise ReadOnlyError(_READ_ONLY_HINT) from context.sqlalchemy_exception

    def _on_execute(
        self, conn: sa.Connection, cursor: t.Any, statement: str, parameters: t.Any,
        context: t.Any, executemany: bool,
    ) -> None:
        if context is not None and (context.isinsert or context.isupdate or context.isdelete):
            conn.info[WRITES_KEY] = True
        elif not _READ_KEYWORDS.match(statement):
            conn.info[WRITES_KEY] = True

    def _on_transaction_end(self, conn: sa.Connection) -> None:
        conn.info.pop(WRITES_KEY, None)

    def _on_checkin(self, dbapi_connection: t.Any, connection_record: t.Any) -> None:
        # The pool rolls back on return, so nothing written can remain.
        connection_record.info.pop(WRITES_KEY, None)


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


def connection_has_writes(conn: sa.Connection) -> bool:
    """Whether ``conn``'s open transaction may hold uncommitted writes.

    An invalidated connection (its DBAPI connection was lost or cancelled mid-query) holds
    nothing any more: the server rolled its transaction back when it went away.
    """
    if conn.closed or conn.invalidated:
        return False
    return bool(conn.info.get(WRITES_KEY))
