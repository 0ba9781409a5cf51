"""Sending converted rows to the database in bulk, the fastest way each driver offers.

* PostgreSQL (psycopg 3): ``COPY ... FROM STDIN``; with ``on_conflict`` "ignore"/"update", into
  a temporary table first, then ``INSERT ... SELECT ... ON CONFLICT``.
* SQLite: one ``executemany`` over a generator of rows.
* Others (MariaDB/MySQL...): ``executemany`` per chunk, which the driver batches.

Each writer works on the raw driver connection inside the session's transaction, and says
which row a driver error is about where the driver lets it know.
"""

from __future__ import annotations

import re
import typing as t

import sqlalchemy as sa

from ..errors import InsertError, first_line

if t.TYPE_CHECKING:
    from . import Plan

Writer = t.Callable[[sa.Connection, "Plan"], int]


def writer_for(dialect: sa.Dialect) -> Writer:
    if dialect.name == "sqlite":
        return _write_sqlite
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _write_postgresql_copy
    return _write_executemany


def _quoted(conn: sa.Connection, plan: Plan) -> tuple[str, str]:
    preparer = conn.dialect.identifier_preparer
    return preparer.format_table(plan.table), ", ".join(preparer.quote(c.name) for c in plan.columns)


def _conflict_clause(conn: sa.Connection, plan: Plan, excluded: str) -> str:
    if plan.on_conflict == "error":
        return ""
    preparer = conn.dialect.identifier_preparer
    keys = list(plan.table.primary_key.columns)
    updates = [c for c in plan.columns if c not in keys]
    if plan.on_conflict == "ignore" or not updates:
        return " ON CONFLICT DO NOTHING"
    target = ", ".join(preparer.quote(c.name) for c in keys)
    assignments = ", ".join(f"{preparer.quote(c.name)} = {excluded}.{preparer.quote(c.name)}" for c in updates)
    return f" ON CONFLICT ({target}) DO UPDATE SET {assignments}"


def _write_sqlite(conn: sa.Connection, plan: Plan) -> int:
    """One ``executemany`` over a generator: sqlite3 runs each row as it takes it, so the row
    it failed on is the last one handed out."""
    table, columns = _quoted(conn, plan)
    marks = ", ".join("?" * len(plan.columns))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}){_conflict_clause(conn, plan, 'excluded')}"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        try:
            cursor.executemany(sql, plan.rows())
        except Exception as e:
            if is_driver_error(e, conn.dialect):
                raise plan.error(e, position=plan.sent - 1) from e
            raise
        return plan.size if plan.on_conflict == "error" else max(cursor.rowcount, 0)
    finally:
        cursor.close()


def _write_postgresql_copy(conn: sa.Connection, plan: Plan) -> int:
    """``COPY ... FROM STDIN``; for "ignore"/"update", into a temporary table, then
    ``INSERT ... SELECT ... ON CONFLICT``."""
    import uuid

    table, columns = _quoted(conn, plan)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if plan.on_conflict == "error":
            _copy(cursor, f"COPY {table} ({columns}) FROM STDIN", plan)
            written = plan.size
        else:
            staging = f'"_analysis_insert_{uuid.uuid4().hex[:12]}"'
            cursor.execute(
                f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS"
                f" SELECT {columns} FROM {table} WITH NO DATA"
            )
            _copy(cursor, f"COPY {staging} ({columns}) FROM STDIN", plan)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging}"
                f"{_conflict_clause(conn, plan, 'EXCLUDED')}"
            )
            written = max(cursor.rowcount, 0)
            cursor.execute(f"DROP TABLE {staging}")
        for column in plan.explicit_autoincrement:
            _advance_sequence(cursor, table, conn.dialect.identifier_preparer.quote(column.name))
        return written
    finally:
        cursor.close()


def _copy(cursor: t.Any, sql: str, plan: Plan) -> None:
    with cursor.copy(sql) as copy:
        write = copy.write_row
        for row in plan.rows():
            write(row)


def _advance_sequence(cursor: t.Any, table: str, column: str) -> None:
    """Explicit ids do not move a serial/identity sequence; move it past them, or the next ORM
    insert collides with the rows just written."""
    cursor.execute(
        "SELECT setval(s.seq, GREATEST(m.top, COALESCE(pg_sequence_last_value(s.seq), 0)))"
        f" FROM (SELECT pg_get_serial_sequence(%s, %s)::regclass AS seq) AS s,"
        f" (SELECT MAX({column}) AS top FROM {table}) AS m"
        " WHERE s.seq IS NOT NULL AND m.top IS NOT NULL",
        (table, column.strip('"')),
    )


def _write_executemany(conn: sa.Connection, plan: Plan) -> int:
    """Other backends (MariaDB/MySQL...): ``executemany`` per chunk; the driver batches rows."""
    table, columns = _quoted(conn, plan)
    style = conn.dialect.paramstyle
    n = len(plan.columns)
    if style == "qmark":
        marks = ", ".join("?" * n)
    elif style == "numeric":
        marks = ", ".join(f":{i + 1}" for i in range(n))
    elif style in ("format", "pyformat"):
        marks = ", ".join(["%s"] * n)
    else:
        raise InsertError(f"insert_frame does not support the {conn.dialect.driver} driver (paramstyle {style}).")
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
    rows = plan.rows()
    while True:
        batch = [row for _, row in zip(range(plan.chunksize), rows, strict=False)]
        if not batch:
            return plan.size
        start = plan.sent - len(batch)
        try:
            conn.exec_driver_sql(sql, batch)
        except sa.exc.DBAPIError as e:
            raise InsertError(
                f"One of rows {start} to {plan.sent - 1} could not be inserted into"
                f" {plan.table.name}: {first_line(e.orig or e)}. Nothing was"
                " written: the transaction was rolled back (with any other uncommitted changes"
                " in this session)."
            ) from e


def is_driver_error(error: BaseException, dialect: sa.Dialect) -> bool:
    return isinstance(error, (sa.exc.DBAPIError, dialect.loaded_dbapi.Error))


# -- naming the row a driver error is about --------------------------------------------------

_COPY_LINE = re.compile(r"\bCOPY \S+, line (\d+)")
_KEY_DETAIL = re.compile(r"Key \((?P<columns>.+?)\)=\((?P<values>.*)\)")


def position_from_driver(error: BaseException, plan: Plan) -> int | None:
    diag = getattr(error, "diag", None)
    if diag is None:
        return None
    match = _COPY_LINE.search(diag.context or "")
    if match and plan.on_conflict == "error":
        return int(match.group(1)) - 1
    detail = _KEY_DETAIL.search(diag.message_detail or "")
    if detail:
        return _find_key(plan, detail.group("columns"), detail.group("values"))
    if match:
        return int(match.group(1)) - 1
    return None


def _find_key(plan: Plan, columns: str, values: str) -> int | None:
    """Best effort: the first row whose values print as in "Key (a, b)=(1, x)"."""
    import numpy as np

    names = [c.strip().strip('"') for c in columns.split(",")]
    parts = [v.strip() for v in values.split(", ")]
    if len(names) != len(parts) or not all(n in plan.frame_columns for n in names):
        return None
    mask = np.ones(plan.size, dtype=bool)
    for name, part in zip(names, parts, strict=True):
        mask &= plan.frame[plan.frame_columns[name]].astype(str).to_numpy() == part
    return int(mask.argmax()) if mask.any() else None
