"""The read pipeline: any query -> DataFrames with faithful dtypes.

A read goes through three steps. :func:`~analysis.read.queries.resolve_query` turns the query
into a statement with named, typed columns; :mod:`analysis.read.plans` decides what each column
becomes; the route machine (:mod:`analysis.read.routes`) fetches and converts the columns batch
by batch by the quickest route that serves the query, each into its canonical Arrow column
(:func:`read_columns`). :func:`read_frame` assembles them into one DataFrame (the pandas step of
:mod:`analysis.read.plans`), :func:`read_table` into one Arrow table (:mod:`analysis.read.tables`),
:func:`iter_frames` into one DataFrame per chunk.

These functions take the session to read with and the options; they know nothing of the
Workbench (whose methods call them).
"""

from __future__ import annotations

import dataclasses
import typing as t

from ..connections import bind_for, plain_session
from ..errors import QueryError
from ..progress import LazyProgress
from . import routes, tables
from .columns import Column, assemble
from .plans import DTYPE_BACKENDS, ColumnPlan, DtypeBackend
from .queries import ResolvedQuery, resolve_query, resolve_statement

if t.TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..connections import AnySession

__all__ = [
    "FrameIterator",
    "ReadColumns",
    "ResolvedQuery",
    "check_chunksize",
    "iter_frames",
    "read_columns",
    "read_frame",
    "read_table",
    "resolve_query",
    "resolve_statement",
    "rows_frame",
]

DEFAULT_DTYPE_BACKEND: DtypeBackend = "numpy_nullable"


def read_frame(
    session: AnySession,
    query: t.Any,
    *,
    params: t.Mapping[str, t.Any] | None = None,
    index_col: str | t.Sequence[str] | None = None,
    columns: t.Sequence[str] | None = None,
    dtype_backend: DtypeBackend = DEFAULT_DTYPE_BACKEND,
    coerce_float: bool = False,
    progress: bool = True,
    application_name: str | None = None,
) -> pd.DataFrame:
    """The whole result of ``query`` as one DataFrame (see :meth:`Workbench.frame`).

    ``application_name`` names the Arrow driver's own connection in ``pg_stat_activity``;
    ``None`` reads through SQLAlchemy only.
    """
    check_dtype_backend(dtype_backend)
    read = read_columns(
        session, query, params=params, columns=columns, coerce_float=coerce_float, progress=progress,
        application_name=application_name,
    )
    frame = assemble(read.names, read.chunks, dtype_backend)
    if read.resolved.expressions is None and columns is not None:
        frame = frame[existing(columns, list(frame.columns), "columns")]
    return set_index(frame, index_col)


def read_table(
    session: AnySession,
    query: t.Any,
    *,
    params: t.Mapping[str, t.Any] | None = None,
    columns: t.Sequence[str] | None = None,
    progress: bool = True,
    application_name: str | None = None,
) -> pa.Table:
    """The whole result of ``query`` as one :class:`pyarrow.Table` in the canonical Arrow types
    (see :mod:`analysis.read.tables`): what :func:`read_frame` gives before its pandas step."""
    read = read_columns(
        session, query, params=params, columns=columns, progress=progress, application_name=application_name
    )
    table = tables.assemble_table(read.names, read.chunks, read.plans)
    if read.resolved.expressions is None and columns is not None:
        table = table.select(existing(columns, table.column_names, "columns"))
    return table


@dataclasses.dataclass
class ReadColumns:
    """A whole result as converted columns: ``chunks[i]`` holds column ``i`` batch by batch."""

    resolved: ResolvedQuery
    plans: list[ColumnPlan] | None
    names: list[str]
    chunks: list[list[Column]]


def read_columns(
    session: AnySession,
    query: t.Any,
    *,
    params: t.Mapping[str, t.Any] | None = None,
    columns: t.Sequence[str] | None = None,
    coerce_float: bool = False,
    progress: bool = True,
    application_name: str | None = None,
) -> ReadColumns:
    """Read every batch of ``query`` by the quickest route and convert it (the common part of
    :func:`read_frame` and :func:`read_table`)."""
    sess = plain_session(session)
    resolved = narrow(resolve_statement(query, params), columns)
    engine = bind_for(sess, resolved.statement)
    column_plans = routes.column_plans(resolved, engine.dialect, coerce_float)

    with LazyProgress("reading", enabled=progress) as bar:

        def attempt(route: routes.Route) -> tuple[list[str], list[list[Column]]]:
            names: list[str] = []
            chunks: list[list[Column]] = []
            for batch_names, converted in routes.converted_batches(
                sess, engine, resolved, column_plans, route, application_name=application_name
            ):
                if not chunks:
                    names, chunks = batch_names, [[] for _ in batch_names]
                rows = len(converted[0]) if converted else 0
                for i, column in enumerate(converted):
                    chunks[i].append(column)
                del converted
                bar.update(rows)
            return names, chunks

        _, (names, chunks) = routes.run_routes(
            routes.candidate_routes(sess, engine, application_name, whole=True), attempt, on_retry=bar.reset
        )
    return ReadColumns(resolved, column_plans, names, chunks)


def rows_frame(
    names: t.Sequence[str], rows: t.Sequence[t.Sequence[t.Any]], *, dtype_backend: DtypeBackend = DEFAULT_DTYPE_BACKEND
) -> pd.DataFrame:
    """Rows another tool has fetched (e.g. JupySQL's ``%sql``) as a DataFrame typed the way
    :func:`read_frame` types raw SQL: from the driver's values, with nullable dtypes."""
    from .columns import rows_to_columns

    check_dtype_backend(dtype_backend)
    converted = rows_to_columns(rows, len(names))
    return assemble(list(names), [[column] for column in converted], dtype_backend)


def iter_frames(
    session: AnySession,
    query: t.Any,
    *,
    chunksize: int = 100_000,
    params: t.Mapping[str, t.Any] | None = None,
    index_col: str | t.Sequence[str] | None = None,
    columns: t.Sequence[str] | None = None,
    dtype_backend: DtypeBackend = DEFAULT_DTYPE_BACKEND,
    coerce_float: bool = False,
) -> FrameIterator:
    """DataFrames of at most ``chunksize`` rows each (see :meth:`Workbench.frames`)."""
    check_dtype_backend(dtype_backend)
    chunksize = check_chunksize(chunksize)
    sess = plain_session(session)
    resolved = narrow(resolve_statement(query, params), columns)
    engine = bind_for(sess, resolved.statement)
    column_plans = routes.column_plans(resolved, engine.dialect, coerce_float)

    def generate() -> t.Generator[pd.DataFrame, None, None]:
        for names, converted in routes.converted_batches(
            sess, engine, resolved, column_plans, "stream", application_name=None, batch_rows=chunksize
        ):
            frame = assemble(names, [[c] for c in converted], dtype_backend)
            del converted
            if resolved.expressions is None and columns is not None:
                frame = frame[existing(columns, list(frame.columns), "columns")]
            yield set_index(frame, index_col)

    return FrameIterator(generate())


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

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def check_chunksize(chunksize: object, default: int | None = None) -> int:
    """``chunksize`` as a number of rows, or :class:`ValueError` with the one message for it."""
    if chunksize is None and default is not None:
        return default
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive number of rows, not {chunksize!r}.")
    return chunksize


def check_dtype_backend(dtype_backend: str) -> None:
    if dtype_backend not in DTYPE_BACKENDS:
        raise ValueError(
            f"dtype_backend must be one of {', '.join(map(repr, DTYPE_BACKENDS))}, not {dtype_backend!r}."
        )


def narrow(resolved: ResolvedQuery, columns: t.Sequence[str] | None) -> ResolvedQuery:
    """Only ``columns`` (in that order), selected in SQL where the statement allows it."""
    import sqlalchemy as sa

    if columns is None or resolved.expressions is None:
        return resolved
    if isinstance(columns, str):
        columns = [columns]
    wanted = existing(columns, resolved.names, "columns")
    positions = [resolved.names.index(name) for name in wanted]
    expressions = [resolved.expressions[i] for i in positions]
    statement = t.cast(sa.Select[t.Any], resolved.statement).with_only_columns(
        *(expression.label(name) for expression, name in zip(expressions, wanted, strict=True)),
        maintain_column_froms=True,
    )
    return ResolvedQuery(
        statement, resolved.params, list(wanted), [resolved.types[i] for i in positions], expressions
    )


def existing(wanted: t.Sequence[str] | str, names: list[str], argument: str) -> list[str]:
    """``wanted`` as a list, or :class:`QueryError` naming the columns that do not exist."""
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise QueryError(
            f"{argument}=: no column named {', '.join(repr(u) for u in unknown)}; the query's"
            f" columns are {', '.join(names)}."
        )
    return wanted


def set_index(frame: pd.DataFrame, index_col: str | t.Sequence[str] | None) -> pd.DataFrame:
    if index_col is None:
        return frame
    return frame.set_index(existing(index_col, list(frame.columns), "index_col"))


