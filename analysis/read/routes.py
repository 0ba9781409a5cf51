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

import contextlib
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..connections import is_read_statement, read_connection, reads_through_session, snapshot_for
from ..errors import DriverFailed, QueryError, RouteUnavailable, TooLarge, TypeMismatch
from . import adbc, columns, mysql, plans
from .cancel import connection_canceller, interruptible
from .queries import ResolvedQuery, query_error, unique_names

Route = t.Literal["small", "arrow", "arrow-cast-all", "stream"]
Casts = t.Literal["none", "needed", "all"]
T = t.TypeVar("T")
R = t.TypeVar("R", bound=str)

#: Rows per fetch when reading through the DBAPI driver.
FETCH_ROWS = 65_536
#: SQLite results of at most this many rows are read through the app's own sqlite3 connection
#: (``"small"``): cheaper than a round trip to the helper process, which may still be starting.
#: 0 turns that route off.
SMALL_ROWS = 1_000


def candidate_routes(
    session: Session, engine: sa.Engine, application_name: str | None, *, whole: bool = False
) -> list[Route]:
    """The routes that may serve a read on ``engine``, best first; ``"stream"`` is always last.

    ``application_name`` ``None`` means SQLAlchemy's route only. A session with uncommitted
    writes reads through its own connection, to see them, so only ``"stream"`` serves it.
    ``whole``: the caller wants the whole result at once (``frame()``); on SQLite a small one
    is then read through sqlite3 (``"small"``, which gives up after :data:`SMALL_ROWS` rows).
    """
    if application_name is None or reads_through_session(session, engine):
        return ["stream"]
    if not adbc.supports(engine) and not mysql.supports(engine):
        return ["stream"]
    if engine.dialect.name == "sqlite":
        small: list[Route] = ["small"] if whole and SMALL_ROWS > 0 else []
        return [*small, "arrow", "arrow-cast-all", "stream"]
    return ["arrow", "stream"]


def run_routes(
    routes: t.Sequence[R], attempt: t.Callable[[R], T], *, on_retry: t.Callable[[], None] = lambda: None
) -> tuple[R, T]:
    """Run ``attempt`` on the first route that serves it; returns that route and the result.

    ``on_retry`` is called before each new attempt (to reset a progress bar, say).
    """
    position = 0
    while position < len(routes) - 1:
        route = routes[position]
        try:
            return route, attempt(route)
        except (TypeMismatch, TooLarge):
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
                check=route not in ("stream", "small"),  # DBAPI values: nothing to check
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
    if route == "small":
        try:
            with read_connection(session, resolved.statement) as conn:
                # One fetch of SMALL_ROWS + 1 rows tells; dropping a SQLite cursor early is free.
                batches = _dbapi_batches(conn, resolved, column_plans, SMALL_ROWS + 1)
                try:
                    first = next(batches)
                finally:
                    batches.close()
        except sa.exc.DBAPIError as e:
            raise query_error(e, resolved.statement) from e
        if first[1] and len(first[1][0]) > SMALL_ROWS:
            raise TooLarge(f"more than {SMALL_ROWS} rows")
        yield first
        return
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
    whole = batch_rows is None
    if batch_rows is None:
        batch_rows = adbc.SQLITE_ONE_BATCH if cast_all else adbc.SQLITE_BATCH_ROWS
    snapshot = snapshot_for(session, engine)
    yield from _arrow_batches(
        engine, resolved, column_plans, application_name, casts="all" if cast_all else "needed", batch_rows=batch_rows,
        whole=whole, snapshot=snapshot.exported if snapshot is not None else None,
    )


def _arrow_batches(
    engine: sa.Engine,
    resolved: ResolvedQuery,
    column_plans: list[plans.ColumnPlan] | None,
    application_name: str,
    *,
    casts: Casts,
    batch_rows: int,
    whole: bool = False,
    snapshot: str | None = None,
) -> t.Iterator[columns.Batch]:
    """Raw columns from the Arrow-native driver, one record batch at a time (``whole``: the
    caller keeps the whole result anyway, so the driver may fetch it at once; ``snapshot``: an
    exported PostgreSQL snapshot to read in)."""
    statement = raw_statement(resolved, column_plans, engine.dialect.name, casts=casts)
    with _open_arrow_reader(engine, statement, resolved, application_name, batch_rows, whole, snapshot) as reader:
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


@contextlib.contextmanager
def _open_arrow_reader(
    engine: sa.Engine, statement: sa.Executable, resolved: ResolvedQuery, application_name: str, batch_rows: int,
    whole: bool,
    snapshot: str | None = None,
) -> t.Iterator[t.Any]:
    """The Arrow-native driver's reader of the statement's batches (ADBC, or connectorx for
    MariaDB/MySQL for whole results; its small results go through PyMySQL instead)."""
    if mysql.supports(engine):
        if not whole:
            raise RouteUnavailable("connectorx cannot stream interruptibly: read in chunks through PyMySQL")
        sql = mysql.compile_literal(statement, resolved.params, engine.dialect)
        if not is_read_statement(sql):
            raise RouteUnavailable("connectorx reads queries only")
        expected = mysql.expected_rows(engine, sql)
        if expected is not None and expected <= mysql.SMALL_RESULT_ROWS:
            raise RouteUnavailable(f"a small result (about {expected} rows): the pooled connection is quicker")
        with mysql.open_reader(engine, sql) as reader:
            yield reader
        return
    try:
        sql, values = adbc.compile_statement(statement, resolved.params, adbc.positional_dialect(engine))
    except (sa.exc.SQLAlchemyError, TypeError, ValueError, KeyError) as e:
        raise RouteUnavailable(f"cannot compile for the driver: {e}") from e
    with adbc.open_reader(
        engine, sql, values, application_name=application_name, batch_rows=batch_rows, snapshot=snapshot
    ) as reader:
        yield reader


def _dbapi_batches(
    conn: sa.Connection, resolved: ResolvedQuery, column_plans: list[plans.ColumnPlan] | None, rows_per_batch: int
) -> t.Generator[columns.Batch, None, None]:
    """Raw columns of ``rows_per_batch`` rows at a time, from a streaming cursor."""
    sqlite = conn.dialect.name == "sqlite"
    statement = raw_statement(resolved, column_plans, conn.dialect.name, casts="all" if sqlite else "none")
    # SQLite reads incrementally anyway; elsewhere a server-side cursor bounds memory.
    options = {} if sqlite else {"stream_results": True, "max_row_buffer": rows_per_batch}
    # Per statement: Connection.execution_options() would change the (session's) connection.
    cancel = connection_canceller(conn)
    result = interruptible(
        lambda: conn.execute(statement, resolved.params, execution_options=options), cancel
    )
    try:
        if not result.returns_rows:
            raise QueryError("The statement returned no rows (it is not a query).")
        keys = [str(k) for k in result.keys()]
        names = resolved.names if column_plans is not None else keys
        objects = {i for i, plan in enumerate(column_plans or ()) if plan.kind in ("json", "python")}
        yielded = False
        while True:
            rows = interruptible(lambda: result.fetchmany(rows_per_batch), cancel)
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
