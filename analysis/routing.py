"""Where a read runs: on the session's own connection, or on a separate read-only one.

A query must see the session's uncommitted writes when there are any, so a session in a
transaction that has written (or has changes waiting to be flushed) serves the read itself.
Otherwise the read gets a connection of its own, which is ended (rolled back) and returned to
the pool before the caller gets its result: no transaction is left open, no connection stays
checked out. Connections from a Workbench's engine are read-only unless it is writable (see
:mod:`analysis.guards`); the fast routes in :mod:`analysis.fastpath` keep the same guarantee on
the driver connections they open themselves.
"""

from __future__ import annotations

import contextlib
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from .guards import connection_has_writes

AnySession = t.Union[Session, "scoped_session[Session]"]


def plain_session(session: AnySession) -> Session:
    """The :class:`~sqlalchemy.orm.Session` behind a ``scoped_session`` (``db.session``)."""
    return session() if isinstance(session, scoped_session) else session


def session_has_writes(session: AnySession, *, flush: bool = True) -> bool:
    """Whether reads must go through ``session``'s connection to see its own writes.

    Changes waiting in the session are flushed first (as the ORM's autoflush does before a
    query), so a read-only Workbench refuses them with the same ``ReadOnlyError`` an ORM query
    would raise.
    """
    sess = plain_session(session)
    if flush and sess.autoflush and (sess.new or sess.deleted or sess.dirty):
        sess.flush()
    transaction = sess.get_transaction()
    if transaction is None:
        return False
    connections = getattr(transaction, "_connections", {})
    return any(
        isinstance(entry[0], sa.Connection) and connection_has_writes(entry[0])
        for entry in connections.values()
    )


def bind_for(session: AnySession, statement: sa.Executable | None) -> sa.Engine:
    """The engine ``session`` would run ``statement`` on (honours Flask-SQLAlchemy bind keys)."""
    bind = plain_session(session).get_bind(clause=statement)
    return bind.engine if isinstance(bind, sa.Connection) else bind


@contextlib.contextmanager
def read_connection(session: AnySession, statement: sa.Executable | None = None) -> t.Iterator[sa.Connection]:
    """A connection to run a read on, chosen as the module docstring says.

    The session's connection is used as-is and left to the session; a separate connection is
    rolled back and closed when the block ends, also on error.
    """
    sess = plain_session(session)
    if session_has_writes(sess):
        yield sess.connection(bind_arguments={"clause": statement} if statement is not None else None)
        return
    conn = bind_for(sess, statement).connect()
    restore: str | None = None
    try:
        restore = _make_read_only(conn)
        yield conn
    finally:
        try:
            conn.rollback()
            if restore is not None:
                conn.exec_driver_sql(restore)
        finally:
            conn.close()


def _make_read_only(conn: sa.Connection) -> str | None:
    """Make the separate connection's transaction read-only, even on a writable Workbench:
    a query is only meant to read, and the database should refuse anything else (SQLite's
    driver would even autocommit a ``WITH ... DELETE``). Returns SQL that undoes it, if any."""
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
