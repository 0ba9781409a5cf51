"""Where an export's rows come from: chunks of columns, never the whole result at once.

Two routes, both giving the columns ``frame()`` would give (the dtype mapping of
:mod:`analysis.dtypes`):

* the Arrow-native driver (:mod:`analysis.fastpath`, SQLite and PostgreSQL), batch by batch:
  no Python object per value, so it is several times faster than the DBAPI driver; used when
  the session has no uncommitted writes the export must see;
* otherwise :meth:`Workbench.frames` (server-side cursors on PostgreSQL and MariaDB).

The Arrow route can find out only midway that it cannot serve a query (a driver that infers a
column's type from its first batch meets another type later). It then raises
:class:`~analysis.fastpath.FastPathUnavailable`, and the export starts again on the other
route; nothing half-written survives, as the output is atomic.
"""

from __future__ import annotations

import typing as t

from .fastpath import FastPathUnavailable

if t.TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .queries import ResolvedQuery
    from .session import Workbench

class DriverFailed(FastPathUnavailable):
    """The Arrow-native driver failed for another reason than a column's type (the query
    itself may be wrong): go straight to the DBAPI route, which reports such errors well."""


#: A chunk: an Arrow table (columns named c0, c1... in query order) or a DataFrame.
Chunk = t.Union["pa.Table", "pd.DataFrame"]

__all__ = ["ROUTES", "DriverFailed", "FastPathUnavailable", "arrow_route_possible", "iter_chunks"]


def arrow_route_possible(workbench: Workbench, resolved: ResolvedQuery) -> bool:
    """Whether the Arrow-native route may serve ``resolved`` (it can still refuse later)."""
    from . import fastpath
    from .routing import bind_for, plain_session, session_has_writes

    session = plain_session(workbench.session)
    return not session_has_writes(session) and fastpath.supports(bind_for(session, resolved.statement))


#: The routes in the order an export tries them: the Arrow driver casting only the columns
#: that need it, then casting every column (slower; for columns whose stored values are of
#: another type than declared), then the DBAPI driver.
ROUTES = ("arrow", "arrow-cast-all", "stream")


def iter_chunks(workbench: Workbench, resolved: ResolvedQuery, chunksize: int, *, route: str) -> t.Iterator[Chunk]:
    """The rows of ``resolved``, at most ``chunksize`` per chunk, by ``route`` (see :data:`ROUTES`)."""
    if route != "stream":
        yield from _arrow_chunks(workbench, resolved, chunksize, casts="all" if route == "arrow-cast-all" else "needed")
        return
    with workbench.frames(
        resolved.statement, params=resolved.params or None, chunksize=chunksize, dtype_backend="pyarrow"
    ) as frames:
        for frame in frames:
            if len(frame):
                yield frame


def _arrow_chunks(workbench: Workbench, resolved: ResolvedQuery, chunksize: int, *, casts: str) -> t.Iterator[pa.Table]:
    import pyarrow as pa
    import sqlalchemy as sa

    from . import dtypes, fastpath
    from .frames import _plans, _raw_statement
    from .queries import unique_names
    from .routing import bind_for, plain_session

    engine = bind_for(plain_session(workbench.session), resolved.statement)
    plans = _plans(resolved, engine.dialect, False)
    statement = _raw_statement(resolved, plans, engine.dialect.name, casts=casts)
    try:
        sql, values = fastpath.compile_statement(statement, resolved.params, fastpath.positional_dialect(engine))
    except (sa.exc.SQLAlchemyError, TypeError, ValueError, KeyError) as e:
        raise FastPathUnavailable(f"cannot compile for the driver: {e}") from e
    name = workbench.application_name[:50] + " (export)"
    with fastpath.open_reader(engine, sql, values, application_name=name, batch_rows=chunksize) as reader:
        checked = False
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except Exception as e:
                if fastpath.is_type_mismatch(e):  # a value of another type than the column's
                    raise FastPathUnavailable(str(e)) from e
                raise DriverFailed(str(e)) from e
            if batch.num_rows == 0:
                continue
            names = resolved.names if plans is not None else unique_names(batch.schema.names)
            chunk_plans = plans or [dtypes.ColumnPlan(n, "raw") for n in names]
            columns = []
            for raw, plan in zip(batch.columns, chunk_plans):
                column = pa.chunked_array([raw])
                try:
                    converted = dtypes.convert_column(column, plan)
                except ValueError as e:
                    raise FastPathUnavailable(str(e)) from e
                if not checked and plan.processor is not None and plan.kind != "python":
                    # A TypeDecorator with its own result processing: make sure the vectorised
                    # conversion agrees with it, as frame() does.
                    if dtypes.sample_disagrees(column, converted, plan):
                        raise FastPathUnavailable(f"column {plan.name!r} needs its TypeDecorator")
                columns.append(_arrow_column(converted))
            checked = True
            yield pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])


def _arrow_column(column: t.Any) -> pa.Array | pa.ChunkedArray:
    """A converted column as Arrow; object arrays (JSON, custom types) value by value."""
    import numpy as np
    import pyarrow as pa

    if not isinstance(column, np.ndarray):
        return column
    try:
        array = pa.array(column, from_pandas=True)
        if not pa.types.is_nested(array.type):
            return array
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    from .csvformat import spell_scalar

    return pa.array([None if v is None else v if isinstance(v, str) else spell_scalar(v) for v in column], pa.string())
