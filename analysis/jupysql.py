"""JupySQL's magics (``%sql``, ``%%sql``, ``%sqlplot``, ``%sqlcmd``) on a Workbench's engine.

JupySQL keeps one SQLAlchemy connection per database it knows (``sql.connection``'s
``ConnectionManager``) and runs every magic on the current one. :class:`JupySQLConnection`
makes that connection one taken from the Workbench's own engine, so the toolkit's connection
settings hold for it as for any other: read-only unless the Workbench is writable (a refused
write is :class:`~analysis.errors.ReadOnlyError`), its ``application_name`` on PostgreSQL.

JupySQL keeps its connection open for the whole session; by default in AUTOCOMMIT, so no
transaction stays open between statements, but with ``%config SqlMagic.autocommit = False``
one would. :meth:`JupySQLConnection.release` (after every cell) ends a transaction that did not
write, as the Workbench does for its session; :meth:`JupySQLConnection.close` (when the
Workbench closes, before its engine is disposed) closes the connection and takes it out of
JupySQL's registry, so JupySQL's own exit handler finds nothing of ours left.
"""

from __future__ import annotations

import typing as t

from .connections import connection_has_writes

if t.TYPE_CHECKING:
    import sqlalchemy as sa


class JupySQLConnection:
    """The Workbench's engine as JupySQL's current connection, until :meth:`close`.

    ``config`` is JupySQL's ``SqlMagic`` instance (it reads ``autocommit`` from it).
    """

    def __init__(self, engine: sa.Engine, config: t.Any) -> None:
        from sql.connection import SQLAlchemyConnection

        # Constructing it registers it with JupySQL and makes it the current connection.
        self._conn: t.Any = SQLAlchemyConnection(engine, config=config)
        self.closed = False

    @property
    def connection(self) -> sa.Connection:
        """The SQLAlchemy connection JupySQL runs its statements on."""
        conn: sa.Connection = self._conn.connection_sqlalchemy
        return conn

    @property
    def alias(self) -> str:
        """The name JupySQL lists it under (``%sql --connections``): the masked URL."""
        return str(self._conn.alias)

    def release(self) -> str:
        """End JupySQL's transaction if it only read; ``"idle"``, ``"released"`` or ``"kept"``."""
        conn = self.connection
        if self.closed or conn.closed or conn.invalidated or not conn.in_transaction():
            return "idle"
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            # Each statement was its own transaction already; this only ends SQLAlchemy's
            # bookkeeping (and the write tracking) for the ones that wrote.
            conn.commit()
            return "released"
        if connection_has_writes(conn):
            return "kept"  # a writable Workbench with SqlMagic.autocommit off: the user commits
        conn.rollback()
        return "released"

    def close(self) -> None:
        """Close the connection and unregister it from JupySQL. Idempotent."""
        if self.closed:
            return
        self.closed = True
        from sql.connection import ConnectionManager

        for alias, registered in list(ConnectionManager.connections.items()):
            if registered is self._conn:
                del ConnectionManager.connections[alias]
        if ConnectionManager.current is self._conn:
            ConnectionManager.current = None
        try:
            self.connection.rollback()
        finally:
            # Not SQLAlchemyConnection.close(): that also disposes the engine, which is the
            # Workbench's to dispose.
            self.connection.close()
