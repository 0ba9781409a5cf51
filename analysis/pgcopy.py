"""The PostgreSQL route for CSV: ``COPY (SELECT ...) TO STDOUT WITH (FORMAT csv)``.

The server formats the CSV itself and streams it, so no row ever becomes a Python object; it
is the fastest way known to get a query's rows into a file. To produce exactly the CSV
described in :mod:`analysis.csvformat`, the query is wrapped in a SELECT that spells each
column the toolkit's way:

* timestamps and dates with ``to_char`` (ISO 8601, ``T``, microseconds, UTC with ``Z``),
  booleans as ``true``/``false``;
* with ``excel_safe``, text (and enum) columns get a ``'`` before a leading ``= + - @``, tab
  or carriage return, per value, in SQL: nothing has to parse the CSV afterwards;
* ``FORCE_QUOTE`` on every column that is not a number or boolean, so text is quoted as on
  the other routes.

Which columns are which is asked of the server (a ``LIMIT 0`` run of the query and the
catalog's type categories), so raw SQL is handled exactly like constructs.

The statement is compiled and its parameters processed by SQLAlchemy as for any execution
(type decorators, enums, expanding ``IN``): a ``do_execute`` dialect event, SQLAlchemy's
documented hook for running the cursor call oneself, swaps ``execute`` for psycopg's
``cursor.copy()``, for the one execution that carries :data:`COPY_OPTION`. psycopg merges the
parameters client-side, as ``COPY`` takes no server-side parameters.
"""

from __future__ import annotations

import contextlib
import typing as t

import sqlalchemy as sa

#: Execution option carrying the :class:`CopyPlan` of one statement.
COPY_OPTION = "analysis_copy_plan"

# pg_type.typcategory values.
_BOOLEAN, _NUMERIC, _STRING, _ENUM, _DATETIME = "B", "N", "S", "E", "D"
_TIMESTAMPTZ, _TIMESTAMP, _DATE, _TIME = 1184, 1114, 1082, 1083


def supports_copy(engine: sa.Engine) -> bool:
    """Whether ``engine`` talks to PostgreSQL through psycopg 3, which has the COPY API."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


class CopyPlan:
    """What to do with one statement: the CSV options and where the bytes go."""

    def __init__(
        self,
        names: t.Sequence[str],
        *,
        excel_safe: bool,
        write: t.Callable[[bytes], t.Any],
        quote: t.Callable[[str], str],
    ) -> None:
        self.names = list(names)
        self.excel_safe = excel_safe
        self.write = write
        self.quote = quote
        self.rows: int | None = None

    def run(self, cursor: t.Any, statement: str, parameters: t.Any) -> None:
        categories = self._describe(cursor, statement, parameters)
        copy_sql = self.copy_statement(statement, categories)
        if not parameters:
            # SQLAlchemy escaped literal % as %% for the driver; psycopg only undoes that when
            # it merges parameters, and there are none.
            copy_sql = copy_sql.replace("%%", "%")
        with cursor.copy(copy_sql, parameters or None) as copy:
            for block in copy:
                self.write(block)
        self.rows = cursor.rowcount if cursor.rowcount >= 0 else None

    def _describe(self, cursor: t.Any, statement: str, parameters: t.Any) -> list[tuple[int, str]]:
        cursor.execute(f"SELECT * FROM ({statement}) AS _analysis_q LIMIT 0", parameters)
        oids = [column.type_code for column in cursor.description]
        if len(oids) != len(self.names):
            raise RuntimeError(f"The query returns {len(oids)} columns, expected {len(self.names)}")
        cursor.execute(
            "SELECT oid::int, typcategory::text FROM pg_catalog.pg_type WHERE oid = ANY(%s::oid[])",
            (oids,),
        )
        category = {int(oid): cat for oid, cat in cursor.fetchall()}
        return [(oid, category.get(oid, "X")) for oid in oids]

    def copy_statement(self, statement: str, columns: t.Sequence[tuple[int, str]]) -> str:
        inner = [f"c{i}" for i in range(len(columns))]
        selected = []
        quoted = []
        for name, column, (oid, category) in zip(self.names, inner, columns):
            alias = self.quote(name)
            selected.append(f"{self._spell(column, oid, category)} AS {alias}")
            if category not in (_BOOLEAN, _NUMERIC):
                quoted.append(alias)
        options = ["FORMAT csv", "HEADER true", "ENCODING 'UTF8'"]
        if quoted:
            options.append(f"FORCE_QUOTE ({', '.join(quoted)})")
        return (
            f"COPY (SELECT {', '.join(selected)} FROM ({statement}) AS _analysis_q({', '.join(inner)}))"
            f" TO STDOUT WITH ({', '.join(options)})"
        )

    def _spell(self, column: str, oid: int, category: str) -> str:
        if category == _BOOLEAN:
            return f"{column}::text"
        if oid == _TIMESTAMPTZ:
            return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        if oid == _TIMESTAMP:
            return f"""to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
        if oid == _DATE:
            return f"to_char({column}, 'YYYY-MM-DD')"
        if oid == _TIME:
            return f"to_char({column}::interval, 'HH24:MI:SS.US')"
        if self.excel_safe and category in (_STRING, _ENUM):
            return (
                f"CASE WHEN left({column}::text, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r')"
                f" THEN '''' || {column}::text ELSE {column}::text END"
            )
        return column


def _do_execute(cursor: t.Any, statement: str, parameters: t.Any, context: t.Any) -> bool | None:
    plan = context.execution_options.get(COPY_OPTION) if context is not None else None
    if plan is None:
        return None  # not ours: SQLAlchemy executes as usual
    plan.run(cursor, statement, parameters)
    return True


@contextlib.contextmanager
def copy_hook(engine: sa.Engine) -> t.Iterator[None]:
    """Let executions on ``engine`` that carry :data:`COPY_OPTION` run as COPY, for a while."""
    sa.event.listen(engine, "do_execute", _do_execute)
    try:
        yield
    finally:
        if sa.event.contains(engine, "do_execute", _do_execute):
            sa.event.remove(engine, "do_execute", _do_execute)


def copy_csv(
    conn: sa.Connection,
    statement: sa.Executable,
    params: t.Mapping[str, t.Any],
    *,
    names: t.Sequence[str],
    excel_safe: bool,
    write: t.Callable[[bytes], t.Any],
) -> int | None:
    """Stream ``statement``'s rows as CSV (header included) into ``write``.

    Returns the number of rows, as the server counted them. Runs on ``conn`` as it is: the
    caller decides the transaction (read-only for exports).
    """
    quote = conn.dialect.identifier_preparer.quote_identifier
    plan = CopyPlan(names, excel_safe=excel_safe, write=write, quote=quote)
    with copy_hook(conn.engine):
        result = conn.execute(statement, dict(params), execution_options={COPY_OPTION: plan})
        result.close()
    return plan.rows
