"""Queries -> DataFrames: :meth:`Workbench.frame` and the chunked :meth:`Workbench.frames`.

A read goes through three steps. :func:`analysis.queries.resolve_query` turns the query into
a statement with named, typed columns. A *route* fetches raw columns batch by batch: the
Arrow-native driver (:mod:`analysis.fastpath`) when the session has nothing uncommitted and the
backend has one, else SQLAlchemy's connection with the driver's rows turned into columns
(server-side cursors on PostgreSQL and MariaDB). Each batch is converted as it arrives by
:mod:`analysis.dtypes` (vectorised, driven by the SQLAlchemy column types) and then freed, so
memory holds the result once, plus one batch.

Column values are read without SQLAlchemy's per-value result processing (the columns are
``type_coerce``-d to ``NullType``): the conversion does that work per column instead.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from . import columnar, conversion, dtypes, fastpath
from .errors import QueryError
from .queries import ResolvedQuery, _resolve, query_error, unique_names
from .routing import bind_for, plain_session, read_connection, session_has_writes

if t.TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from .session import Workbench

DEFAULT_DTYPE_BACKEND = "numpy_nullable"
#: Results past this many rows show a progress bar (unless ``progress=False``).
PROGRESS_ROWS = 100_000
#: Rows per fetch when reading through the DBAPI driver.
FETCH_ROWS = 65_536



def read_frame(
    workbench: Workbench,
    query: t.Any,
    *,
    params: t.Mapping[str, t.Any] | None = None,
    index_col: str | t.Sequence[str] | None = None,
    columns: t.Sequence[str] | None = None,
    dtype_backend: str = DEFAULT_DTYPE_BACKEND,
    coerce_float: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """The whole result of ``query`` as one DataFrame (see :meth:`Workbench.frame`)."""
    _check_backend(dtype_backend)
    session = plain_session(workbench.session)
    resolved = _narrow(_resolve(query, dict(params or {})), columns)
    engine = bind_for(session, resolved.statement)
    plans = _plans(resolved, engine.dialect, coerce_float)
    bar = Progress(progress)
    try:
        try:
            names, chunks = _read(session, engine, resolved, plans, bar, workbench.application_name)
        except conversion.Unfaithful:
            # Values the fast route cannot convert faithfully (a TypeDecorator with its own
            # processing, stored values of another type): read again through SQLAlchemy.
            bar.reset()
            names, chunks = _read(session, engine, resolved, plans, bar, None)
        frame = columnar.assemble(names, chunks, dtype_backend)
    finally:
        bar.close()
    if resolved.expressions is None and columns is not None:
        frame = frame[_existing(columns, list(frame.columns), "columns")]
    return _set_index(frame, index_col)


def iter_frames(
    workbench: Workbench,
    query: t.Any,
    *,
    chunksize: int = 100_000,
    params: t.Mapping[str, t.Any] | None = None,
    index_col: str | t.Sequence[str] | None = None,
    columns: t.Sequence[str] | None = None,
    dtype_backend: str = DEFAULT_DTYPE_BACKEND,
    coerce_float: bool = False,
) -> FrameIterator:
    """DataFrames of at most ``chunksize`` rows each (see :meth:`Workbench.frames`)."""
    _check_backend(dtype_backend)
    if not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive number of rows, not {chunksize!r}")
    session = plain_session(workbench.session)
    resolved = _narrow(_resolve(query, dict(params or {})), columns)
    engine = bind_for(session, resolved.statement)
    plans = _plans(resolved, engine.dialect, coerce_float)
    return FrameIterator(
        _generate_frames(session, resolved, plans, chunksize, index_col, columns, dtype_backend)
    )


class FrameIterator:
    """An iterator of DataFrames that holds a database connection only while it iterates.

    The connection (and its server-side cursor) is released when the iterator is exhausted,
    when :meth:`close` is called or the ``with`` block ends, and when it is garbage-collected.
    """

    def __init__(self, generator: t.Generator[pd.DataFrame, None, None]) -> None:
        self._generator = generator

    def __iter__(self) -> FrameIterator:
        return self

    def __next__(self) -> pd.DataFrame:
        return next(self._generator)

    def close(self) -> None:
        """Stop reading and release the connection. Safe to call twice."""
        self._generator.close()

    def __enter__(self) -> FrameIterator:
        return self

    def __exit__(self, *exc_info: t.Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


# -- routes -----------------------------------------------------------------------------------


def _read(
    session: Session,
    engine: sa.Engine,
    resolved: ResolvedQuery,
    plans: list[dtypes.ColumnPlan] | None,
    bar: Progress,
    application_name: str | None,
) -> tuple[list[str], list[list[columnar.Column]]]:
    """Column names and converted columns (a list of chunks each), by the quickest route.

    ``application_name`` ``None`` skips the fast route.
    """
    if application_name is not None and not session_has_writes(session) and fastpath.supports(engine):
        # ADBC's SQLite driver types a column from the values of its first batch; should a
        # later batch disagree (a column all NULL at first, values stored with another type),
        # the query is read again as one batch with every column cast in SQL.
        for attempt in (1, 2) if engine.dialect.name == "sqlite" else (1,):
            try:
                batches = _arrow_batches(engine, resolved, plans, application_name, second_attempt=attempt == 2)
                return _collect(batches, plans, bar, check=True, dialect_name=engine.dialect.name)
            except fastpath.TypeMismatch:
                bar.reset()
            except fastpath.FastPathUnavailable:
                bar.reset()
                break
    try:
        with read_connection(session, resolved.statement) as conn:
            return _collect(_dbapi_batches(conn, resolved, plans, FETCH_ROWS), plans, bar, check=False)
    except sa.exc.DBAPIError as e:
        raise query_error(e, resolved.statement) from e


def _arrow_batches(
    engine: sa.Engine,
    resolved: ResolvedQuery,
    plans: list[dtypes.ColumnPlan] | None,
    application_name: str,
    *,
    second_attempt: bool = False,
) -> t.Iterator[columnar.Batch]:
    """Raw columns from the Arrow-native driver, one record batch at a time (on a second
    attempt: every column cast in SQL, and the whole result as one batch)."""
    statement = _raw_statement(resolved, plans, engine.dialect.name, casts="all" if second_attempt else "needed")
    try:
        sql, values = fastpath.compile_statement(statement, resolved.params, fastpath.positional_dialect(engine))
    except (sa.exc.SQLAlchemyError, TypeError, ValueError, KeyError) as e:
        raise fastpath.FastPathUnavailable(f"cannot compile for the driver: {e}") from e
    batch_rows = fastpath.SQLITE_ONE_BATCH if second_attempt else fastpath.SQLITE_BATCH_ROWS
    with fastpath.open_reader(
        engine, sql, values, application_name=application_name + " (fast)", batch_rows=batch_rows
    ) as reader:
        names = resolved.names if plans is not None else list(reader.schema.names)
        yielded = False
        try:
            for batch in reader:
                yielded = True
                yield names, list(batch.columns)
                del batch
        except Exception as e:  # the driver gave up midway
            if fastpath.is_type_mismatch(e):
                raise fastpath.TypeMismatch(str(e)) from e
            raise fastpath.FastPathUnavailable(str(e)) from e
        if not yielded:
            yield names, [columnar.empty_column() for _ in names]


def _dbapi_batches(
    conn: sa.Connection, resolved: ResolvedQuery, plans: list[dtypes.ColumnPlan] | None, rows_per_batch: int
) -> t.Iterator[columnar.Batch]:
    """Raw columns of ``rows_per_batch`` rows at a time, from a streaming cursor."""
    sqlite = conn.dialect.name == "sqlite"
    statement = _raw_statement(resolved, plans, conn.dialect.name, casts="all" if sqlite else "none")
    # SQLite reads incrementally anyway; elsewhere a server-side cursor bounds memory.
    options = {} if sqlite else {"stream_results": True, "max_row_buffer": rows_per_batch}
    # Per statement: Connection.execution_options() would change the (session's) connection.
    result = conn.execute(statement, resolved.params, execution_options=options)
    try:
        if not result.returns_rows:
            raise QueryError("The statement returned no rows (it is not a query).")
        keys = [str(k) for k in result.keys()]
        names = resolved.names if plans is not None else keys
        objects = {i for i, plan in enumerate(plans or ()) if plan.kind in ("json", "python")}
        yielded = False
        while True:
            rows = result.fetchmany(rows_per_batch)
            if not rows:
                break
            yielded = True
            yield names, columnar.rows_to_columns(rows, len(keys), objects)
            del rows
        if not yielded:
            yield names, [columnar.empty_column() for _ in keys]
    finally:
        result.close()


def _collect(
    batches: t.Iterator[columnar.Batch], plans: list[dtypes.ColumnPlan] | None, bar: Progress, *, check: bool,
    dialect_name: str = "",
) -> tuple[list[str], list[list[columnar.Column]]]:
    """Convert batch by batch, so each raw batch is freed as soon as it is converted."""
    names: list[str] = []
    chunks: list[list[columnar.Column]] = []
    converter: columnar.Converter | None = None
    for batch_names, raw in batches:
        if converter is None:
            names = unique_names(batch_names)
            converter = columnar.Converter(
                plans or [dtypes.ColumnPlan(n, "raw") for n in names], check=check, dialect_name=dialect_name
            )
            chunks = [[] for _ in names]
        rows = len(raw[0]) if raw else 0
        for i, column in enumerate(converter.convert(raw)):
            chunks[i].append(column)
        del raw
        bar.update(rows)
    return names, chunks


def _generate_frames(
    session: Session,
    resolved: ResolvedQuery,
    plans: list[dtypes.ColumnPlan] | None,
    chunksize: int,
    index_col: str | t.Sequence[str] | None,
    columns: t.Sequence[str] | None,
    dtype_backend: str,
) -> t.Generator[pd.DataFrame, None, None]:
    try:
        with read_connection(session, resolved.statement) as conn:
            converter: columnar.Converter | None = None
            for names, raw in _dbapi_batches(conn, resolved, plans, chunksize):
                if converter is None:
                    names = unique_names(names)
                    converter = columnar.Converter(plans or [dtypes.ColumnPlan(n, "raw") for n in names], check=False)
                frame = columnar.assemble(unique_names(names), [[c] for c in converter.convert(raw)], dtype_backend)
                del raw
                if resolved.expressions is None and columns is not None:
                    frame = frame[_existing(columns, list(frame.columns), "columns")]
                yield _set_index(frame, index_col)
    except sa.exc.DBAPIError as e:
        raise query_error(e, resolved.statement) from e


# -- statements -------------------------------------------------------------------------------


def _plans(resolved: ResolvedQuery, dialect: sa.Dialect, coerce_float: bool) -> list[dtypes.ColumnPlan] | None:
    if resolved.is_text:
        return None
    return dtypes.plan_columns(resolved.names, resolved.types, dialect, coerce_float=coerce_float)


def _raw_statement(
    resolved: ResolvedQuery, plans: list[dtypes.ColumnPlan] | None, dialect_name: str, *, casts: str
) -> sa.Executable:
    """The statement with each column read as the driver's raw value (no result processing),
    cast in SQL where a driver needs one type per column (``casts``: ``"none"``, ``"needed"``
    or ``"all"``, see :func:`dtypes.sql_cast`)."""
    if resolved.expressions is None or plans is None:
        return resolved.statement
    columns = []
    for name, expression, plan in zip(resolved.names, resolved.expressions, plans):
        target = None if casts == "none" else dtypes.sql_cast(plan, dialect_name, everything=casts == "all")
        if target is not None:
            expression = sa.cast(expression, target)
        columns.append(sa.type_coerce(expression, sa.types.NullType()).label(name))
    return t.cast(sa.Select[t.Any], resolved.statement).with_only_columns(*columns, maintain_column_froms=True)


def _narrow(resolved: ResolvedQuery, columns: t.Sequence[str] | None) -> ResolvedQuery:
    """Only ``columns`` (in that order), selected in SQL where the statement allows it."""
    if columns is None or resolved.expressions is None:
        return resolved
    if isinstance(columns, str):
        columns = [columns]
    wanted = _existing(columns, resolved.names, "columns")
    positions = [resolved.names.index(name) for name in wanted]
    expressions = [resolved.expressions[i] for i in positions]
    statement = t.cast(sa.Select[t.Any], resolved.statement).with_only_columns(
        *(expression.label(name) for expression, name in zip(expressions, wanted)), maintain_column_froms=True
    )
    return ResolvedQuery(
        statement, resolved.params, list(wanted), [resolved.types[i] for i in positions], expressions
    )


def _existing(wanted: t.Sequence[str] | str, names: list[str], argument: str) -> list[str]:
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise QueryError(
            f"{argument}=: no column named {', '.join(repr(u) for u in unknown)}; the query's"
            f" columns are {', '.join(names)}."
        )
    return wanted


# -- columns ----------------------------------------------------------------------------------


def _set_index(frame: pd.DataFrame, index_col: str | t.Sequence[str] | None) -> pd.DataFrame:
    if index_col is None:
        return frame
    return frame.set_index(_existing(index_col, list(frame.columns), "index_col"))


def _check_backend(dtype_backend: str) -> None:
    if dtype_backend not in dtypes.DTYPE_BACKENDS:
        raise ValueError(
            f"dtype_backend must be one of {', '.join(map(repr, dtypes.DTYPE_BACKENDS))}, not"
            f" {dtype_backend!r}."
        )


class Progress:
    """A tqdm bar that appears once more than :data:`PROGRESS_ROWS` rows have been read."""

    def __init__(self, enabled: bool, threshold: int | None = None) -> None:
        self.enabled = enabled
        self.threshold = PROGRESS_ROWS if threshold is None else threshold
        self.rows = 0
        self._bar: t.Any = None

    def update(self, rows: int) -> None:
        self.rows += rows
        if self._bar is not None:
            self._bar.update(rows)
        elif self.enabled and self.rows > self.threshold:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc="reading", unit=" rows", unit_scale=True, initial=self.rows)

    def reset(self) -> None:
        self.rows = 0
        if self._bar is not None:
            self._bar.reset()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
