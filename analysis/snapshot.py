"""One database snapshot for every read in a block: ``with wb.snapshot(): ...``.

What each backend gives (also in the README):

* **PostgreSQL**: the session's transaction becomes ``REPEATABLE READ READ ONLY`` and exports
  its snapshot (``pg_export_snapshot()``). Every read in the block on a connection of its own
  (``frame``, ``frames``, ``arrow``, exports, COPY, the Arrow driver, and the Dask partitions
  read by other processes) imports it with ``SET TRANSACTION SNAPSHOT``, so they all see the
  database as it was at the start of the block; ORM queries on ``wb.session`` do too.
* **MariaDB/MySQL**: ``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`` on the session's
  connection (``REPEATABLE READ``, InnoDB tables); the server cannot share it, so every read in
  the block goes through that one connection (SQLAlchemy's route), and ``wb.dask()`` refuses.
* **SQLite**: one read transaction (``BEGIN`` and a first read) on the session's connection; in
  WAL mode writers go on and the block sees none of their commits; without WAL, writers wait
  until the block ends. As on MariaDB, every read goes through that connection and
  ``wb.dask()`` refuses: another process cannot join the transaction.

The block only reads (a write is refused by the database); it starts by ending the session's
read-only transaction, and refuses to start while the session holds uncommitted writes. At the
end the transaction is rolled back, so later reads see the database as it is then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing as t

import sqlalchemy as sa

from .connections import SNAPSHOT_KEY, AnySession, Snapshot, plain_session, session_has_writes
from .errors import SnapshotError, first_line


@dataclasses.dataclass(frozen=True)
class HeldSnapshot:
    """The snapshot of each engine, as ``with wb.snapshot() as snap:`` gives it."""

    snapshots: dict[sa.Engine, Snapshot]

    @property
    def exported(self) -> list[str]:
        """The exported PostgreSQL snapshot ids (none on other backends)."""
        return [s.exported for s in self.snapshots.values() if s.exported is not None]

    def __repr__(self) -> str:
        parts = [f"{s.dialect_name}{'=' + s.exported if s.exported else ''}" for s in self.snapshots.values()]
        return f"<Snapshot {', '.join(parts)}>"


@contextlib.contextmanager
def hold(session: AnySession, engines: t.Sequence[sa.Engine]) -> t.Iterator[HeldSnapshot]:
    """Take one snapshot per engine in ``session``'s transaction, for the block's reads."""
    sess = plain_session(session)
    if sess.info.get(SNAPSHOT_KEY):
        raise SnapshotError("A snapshot is already held: nest reads inside the first wb.snapshot() block.")
    if session_has_writes(sess):
        raise SnapshotError(
            "The session holds uncommitted writes, which a snapshot would not see: run"
            " db.session.commit() or db.session.rollback() first."
        )
    if sess.in_transaction():
        sess.rollback()  # only read: start the snapshot's transaction afresh
    restores: list[tuple[sa.Connection, str]] = []
    held: dict[sa.Engine, Snapshot] = {}
    try:
        for engine in engines:
            conn = sess.connection(bind_arguments={"bind": engine})
            try:
                held[engine], restore = _begin(conn)
            except SnapshotError:
                raise
            except Exception as e:  # the driver's own error, from its cursor
                where = engine.url.render_as_string(hide_password=True)
                raise SnapshotError(f"Cannot take a snapshot of {where}: {first_line(e)}.") from e
            if restore is not None:
                restores.append((conn, restore))
        sess.info[SNAPSHOT_KEY] = held
        yield HeldSnapshot(dict(held))
    finally:
        sess.info.pop(SNAPSHOT_KEY, None)
        try:
            for conn, restore in restores:
                if not conn.closed and not conn.invalidated:
                    _dbapi_execute(conn, restore)
        finally:
            sess.rollback()


def _begin(conn: sa.Connection) -> tuple[Snapshot, str | None]:
    """Start the snapshot on ``conn``'s new transaction; returns it and SQL to undo a setting."""
    name = conn.dialect.name
    if name == "postgresql":
        _dbapi_execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _dbapi_execute(conn, "SET TRANSACTION READ ONLY")
        exported = _dbapi_execute(conn, "SELECT pg_export_snapshot()")
        return Snapshot(name, str(exported)), None
    if name in ("mysql", "mariadb"):
        # WITH CONSISTENT SNAPSHOT only means something in REPEATABLE READ.
        _dbapi_execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _dbapi_execute(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        return Snapshot(name), None
    if name == "sqlite":
        restore = None if _dbapi_execute(conn, "PRAGMA query_only") else "PRAGMA query_only = OFF"
        _dbapi_execute(conn, "PRAGMA query_only = ON")
        _dbapi_execute(conn, "BEGIN")
        _dbapi_execute(conn, "SELECT count(*) FROM sqlite_master")  # the read that takes the snapshot
        return Snapshot(name), restore
    raise SnapshotError(f"Snapshots are not supported on {name}.")


def _dbapi_execute(conn: sa.Connection, sql: str) -> t.Any:
    """Run ``sql`` on the DBAPI connection itself: it is transaction control, not a write the
    Workbench should report as pending (statements through SQLAlchemy would mark it so)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None
    finally:
        cursor.close()
