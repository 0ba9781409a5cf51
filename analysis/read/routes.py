"""The route machine: which way a read's rows travel, and what happens when a way gives up.

A *route* fetches a resolved query's raw columns batch by batch:

* ``"arrow"``: the Arrow-native driver (:mod:`analysis.read.adbc`), casting in SQL only the
  columns that need it; used when the session has nothing uncommitted and the backend has a
  driver. Several times faster than the DBAPI driver: no Python object per value.
* ``"arrow-cast-all"`` (SQLite): the same with every column cast in SQL, for columns whose
  stored values are of another type than declared (ADBC's SQLite driver types a column from
  its first batch).
* ``"stream"``: SQLAlchemy's connection, the driver's rows turned into columns (server-side
  cursors on PostgreSQL and MariaDB). It serves every query and reports database errors well.

:func:`candidate_routes` lists the routes that may serve a query, best first, and
:func:`run_routes` runs an *attempt* (read everything into a frame; write a file) on the
first, moving on when a route raises :class:`~analysis.errors.RouteUnavailable`: to the next
route on a :class:`~analysis.errors.TypeMismatch`, straight to ``"stream"`` on anything else.
An attempt must leave nothing behind when it fails (frames are built in memory; files are
written atomically), so that starting again is safe.

Each batch is converted as it arrives (:class:`analysis.read.columns.Converter`, vectorised,
driven by the column plans) and then freed, so memory holds one raw batch at a time. Column
values are read without SQLAlchemy's per-value result processing (the columns are
``type_coerce``-d to ``NullType``): the conversion does that work per column instead.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..connections import read_connection, reads_through_session, snapshot_for
from ..errors import DriverFailed, QueryError, RouteUnavailable, TypeMismatch
from . import adbc, columns, plans
from .queries import ResolvedQuery, query_error, unique_names

Route = t.Literal["arrow", "arrow-cast-all", "stream"]
Casts = t.Literal["none", "needed", "all"]
T = t.TypeVar("T")

#: Rows per fetch when reading through the DBAPI driver.
FETCH_ROWS = 65_536


def candidate_routes(session: Session, engine: sa.Engine, application_name: str | None) -> list[Route]:
    """The routes that may serve a read on ``engine``, best first; ``"stream"`` is always last.

    ``application_name`` ``None`` means SQLAlchemy's route only. A session with uncommitted
    writes reads through its own connection, to see them, so only ``"stream"`` serves it.
    """
    if application_name is None or reads_through_session(session, engine) or not adbc.supports(engine):
        return ["stream"]
    if engine.dialect.name == "sqlite":
        return ["arrow", "arrow-cast-all", "stream"]
    return ["arrow", "stream"]


def run_routes(
    routes: t.Sequence[Route], attempt: t.Callable[[Route], T], *, on_retry: t.Callable[[], None] = lambda: None
) -> tuple[Route, T]:
    """Run ``attempt`` on the first route that serves it; returns that route and the result.

    ``on_retry`` is called before each new attempt (to reset a progress bar, say).
    """
    position = 0
    while position < len(routes) - 1:
        route = routes[position]
        try:
            return route, attempt(route)
        except TypeMismatch:
            position += 1
        except RouteUnavailable:
            position = len(routes) - 1
        on_retry()
    return routes[-1], attempt(routes[-1])


def column_plans(resolved: ResolvedQuery, dialect: sa.Dialect, coerce_float: bool) -> list[plans.ColumnPlan] | None:
    """The plans of the query's columns; ``None`` for raw SQL, typed by what the driver returns."""
    if resolved.is_text:
        return None
    return plans.plan_columns(resolved.names, resolved.types, dialect, coerce_float=coerce_float)


def converted_batches(
    session: Session,
    engine: sa.Engine,
    resolved: ResolvedQuery,
    column_plans: list[plans.ColumnPlan] | None,
    route: Route,
    *,
    application_name: str | None,
    batch_rows: int | None = None,
) -> t.Iterator[tuple[list[str], list[columns.Column]]]:
    """The query's columns by ``route``, converted as the plans say, one batch at a time.

    ``batch_rows`` bounds a batch (the whole result may be one batch on ``"arrow-cast-all"``
    when it is ``None``, so the driver types each column from all of its values). The names
    are unique. A route that cannot serve the query raises :class:`RouteUnavailable`.
    """
    converter: columns.Converter | None = None
    for names, raw in _raw_batches(session, engine, resolved, column_plans, route, application_name, batch_rows):
        if converter is None:
            names = unique_names(names)
            converter = columns.Converter(
                column_plans or [plans.ColumnPlan(n, "raw") for n in names],
                check=route != "stream",
                dialect_name=engine.dialect.name,
            )
        converted = converter.convert(raw)
        del raw
        yield unique_names(names), converted


def _raw_batches(
    session: Session,
    engine: sa.Engine,
    resolved: ResolvedQuery,
    column_plans: list[plans.ColumnPlan] | None,
    route: Route,
    application_name: str | None,
    batch_rows: int | None,
) -> t.Iterator[columns.Batch]:
    if route == "stream":
        try:
            with read_connection(session, resolved.statement) as conn:
                yield from _dbapi_batches(conn, resolved, column_plans, batch_rows or FETCH_ROWS)
        except sa.exc.DBAPIError as e:
            raise query_error(e, resolved.statement) from e
        return
    if application_name is None:
        raise RouteUnavailable("the Arrow route needs an application_name")
    cast_all = route == "arrow-cast-all"
    if batch_rows is None:
        batch_rows = adbc.SQLITE_ONE_BATCH if cast_all else adbc.SQLITE_BATCH_ROWS
    snapshot = snapshot_for(session, engine)
    yield from _arrow_batches(
        engine, resolved, column_plans, application_name, casts="all" if cast_all else "needed", batch_rows=batch_rows,
        snapshot=snapshot.exported if snapshot is not None else None,
    )


def _arrow_batches(
    engine: sa.Engine,
    resolved: ResolvedQuery,
    column_plans: list[plans.ColumnPlan] | None,
    application_name: str,
    *,
    casts: Casts,
    batch_rows: int,
    snapshot: str | None = None,
) -> t.Iterator[columns.Batch]:
    """Raw columns from the Arrow-native driver, one record batch at a time (in the exported
    PostgreSQL ``snapshot``, if given)."""
    statement = raw_statement(resolved, column_plans, engine.dialect.name, casts=casts)
    try:
        sql, values = adbc.compile_statement(statement, resolved.params, adbc.positional_dialect(engine))
    except (sa.exc.SQLAlchemyError, TypeError, ValueError, KeyError) as e:
        raise RouteUnavailable(f"cannot compile for the driver: {e}") from e
    with adbc.open_reader(
        engine, sql, values, application_name=application_name, batch_rows=batch_rows, snapshot=snapshot
    ) as reader:
        names = resolved.names if column_plans is not None else list(reader.schema.names)
        yielded = False
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except Exception as e:  # the driver gave up midway
                if adbc.is_type_mismatch(e):
                    raise TypeMismatch(str(e)) from e
                raise DriverFailed(str(e)) from e
            if batch.num_rows == 0 and yielded:
                continue
            yielded = True
            yield names, list(batch.columns)
            del batch
        if not yielded:
            yield names, [columns.empty_column() for _ in names]


def _dbapi_batches(
    conn: sa.Connection, resolved: ResolvedQuery, column_plans: list[plans.ColumnPlan] | None, rows_per_batch: int
) -> t.Iterator[columns.Batch]:
    """Raw columns of ``rows_per_batch`` rows at a time, from a streaming cursor."""
    sqlite = conn.dialect.name == "sqlite"
    statement = raw_statement(resolved, column_plans, conn.dialect.name, casts="all" if sqlite else "none")
    # SQLite reads incrementally anyway; elsewhere a server-side cursor bounds memory.
    options = {} if sqlite else {"stream_results": True, "max_row_buffer": rows_per_batch}
    # Per statement: Connection.execution_options() would change the (session's) connection.
    result = conn.execute(statement, resolved.params, execution_options=options)
    try:
        if not result.returns_rows:
            raise QueryError("The statement returned no rows (it is not a query).")
        keys = [str(k) for k in result.keys()]
        names = resolved.names if column_plans is not None else keys
        objects = {i for i, plan in enumerate(column_plans or ()) if plan.kind in ("json", "python")}
        yielded = False
        while True:
            rows = result.fetchmany(rows_per_batch)
            if not rows:
                break
            yielded = True
            yield names, columns.rows_to_columns(rows, len(keys), objects)
            del rows
        if not yielded:
            yield names, [columns.empty_column() for _ in keys]
    finally:
        result.close()


def raw_statement(
    resolved: ResolvedQuery, column_plans: list[plans.ColumnPlan] | None, dialect_name: str, *, casts: Casts
) -> sa.Executable:
    """The statement with each column read as the driver's raw value (no result processing),
    cast in SQL where a driver needs one type per column (see :func:`plans.sql_cast`)."""
    if resolved.expressions is None or column_plans is None:
        return resolved.statement
    selected = []
    for name, expression, plan in zip(resolved.names, resolved.expressions, column_plans, strict=True):
        target = None if casts == "none" else plans.sql_cast(plan, dialect_name, everything=casts == "all")
        if target is not None:
            expression = sa.cast(expression, target)
        selected.append(sa.type_coerce(expression, sa.types.NullType()).label(name))
    return t.cast(sa.Select[t.Any], resolved.statement).with_only_columns(*selected, maintain_column_froms=True)
