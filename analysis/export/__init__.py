"""CSV and Parquet files from any query: streamed, atomic, with progress.

>>> wb.export_csv(sa.select(User).where(User.active), "active-users.csv")
ExportResult(path='active-users.csv', rows=4210, bytes=388113, seconds=0.21, route='arrow')

* **Any query form** ``frame()`` accepts (``select()``, ``Model.query``, a model, a ``Table``,
  SQL text with ``:name`` parameters), resolved by :func:`analysis.read.resolve_query`.
* **Streaming.** Rows go from the database to the file chunk by chunk through the read
  pipeline's route machine (:mod:`analysis.read.routes`: Arrow batches from an ADBC driver,
  else server-side cursors on PostgreSQL and MariaDB), so memory does not grow with the table. On
  PostgreSQL with psycopg, CSV goes through the server's ``COPY ... TO STDOUT`` instead (see
  :mod:`analysis.export.pgcopy`), which writes the same CSV.
* **Atomic.** The file is written beside the target and renamed over it only when complete
  (:mod:`analysis.export.atomic`); after an error, Ctrl-C or ``kill -9`` an earlier file at that
  path is untouched and no temporary file is left.
* **Read-only.** The rows are read in a transaction of their own that cannot write (unless
  the session has uncommitted writes the export must see; then it reads through the session).
* **CSV as in** :mod:`analysis.export.csv`: RFC 4180 with a header, UTF-8 (``utf-8-sig`` adds
  the byte-order mark Excel wants), ISO 8601 timestamps, empty field for NULL, ``excel_safe``
  against formula injection; ``.gz``/``.zip`` compression from the file name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import typing as t
from pathlib import Path

import sqlalchemy as sa

from ..connections import (
    bind_for,
    connection_lost_error,
    is_connection_lost,
    make_transaction_read_only,
    plain_session,
    read_connection,
    session_has_writes,
)
from ..errors import AnalysisError, DatabaseUnavailableError, ExportError, RouteUnavailable
from ..progress import LazyProgress
from ..read import ResolvedQuery, check_chunksize, read_frame, resolve_query
from ..read import routes as read_routes
from ..read.queries import query_error
from .atomic import atomic_output
from .csv import CsvWriter
from .files import check_encoding, check_target, compressed, compression_options, output_format, size_text
from .parquet import ParquetSink

if t.TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..connections import AnySession

__all__ = ["DEFAULT_CHUNKSIZE", "ExportResult", "export_csv", "export_frame", "export_parquet", "write_csv_stream"]

#: Rows per chunk when none is given: large enough to amortise per-chunk costs, small enough
#: that a chunk of a wide table stays in the tens of megabytes.
DEFAULT_CHUNKSIZE = 20_000

#: How an export's rows travelled: PostgreSQL's COPY, a read route, or a DataFrame in memory.
ExportRoute = t.Literal["copy", "arrow", "arrow-cast-all", "stream", "frame"]
Method = t.Literal["auto", "copy", "stream"]


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote: where, how many rows and bytes, how long it took, which route."""

    path: Path
    rows: int
    bytes: int
    seconds: float
    #: ``"copy"`` (PostgreSQL's COPY), ``"arrow"`` or ``"arrow-cast-all"`` (an Arrow-native
    #: driver, in batches), ``"stream"`` (SQLAlchemy, in chunks) or ``"frame"`` (a DataFrame
    #: already in memory).
    route: ExportRoute

    def summary(self) -> str:
        """``Wrote 1,204 rows (88.2 kB) to signups.csv in 0.31 s.``"""
        return f"Wrote {self.rows:,} rows ({size_text(self.bytes)}) to {self.path} in {self.seconds:.2f} s."

    def __repr__(self) -> str:
        return (
            f"ExportResult(path={str(self.path)!r}, rows={self.rows}, bytes={self.bytes},"
            f" seconds={self.seconds:.2f}, route={self.route!r})"
        )


def export_csv(
    session: AnySession,
    query: t.Any,
    path: str | os.PathLike[str],
    *,
    params: t.Mapping[str, t.Any] | None = None,
    chunksize: int | None = None,
    compression: str | dict[str, t.Any] | None = "infer",
    excel_safe: bool = True,
    progress: bool = True,
    encoding: str = "utf-8",
    lineterminator: str = "\n",
    method: Method = "auto",
    application_name: str | None = None,
) -> ExportResult:
    """Write the rows of ``query`` to a CSV file at ``path``; see the module docstring.

    ``compression`` is ``"infer"`` (from a ``.gz``/``.zip`` suffix), ``None``, ``"gzip"``,
    ``"zip"``, or a dict such as ``{"method": "gzip", "compresslevel": 1}`` as in pandas.
    ``method`` is ``"auto"`` (COPY on PostgreSQL when it can give the same CSV), ``"copy"``
    (refuse to export otherwise) or ``"stream"``. ``application_name`` names the Arrow
    driver's connection; ``None`` reads through SQLAlchemy only.
    """
    started = time.perf_counter()
    path = Path(path)
    compress = compression_options(path, compression)
    rows_per_chunk = check_chunksize(chunksize, DEFAULT_CHUNKSIZE)
    check_encoding(encoding)
    check_target(path)
    sess = plain_session(session)
    with _reporting(path):
        resolved = resolve_query(query, params=params, session=sess)
        use_copy = _use_copy(sess, resolved, method=method, lineterminator=lineterminator)

        def attempt(route: ExportRoute) -> int:
            with atomic_output(path) as raw, compressed(raw, compress, path) as sink:
                writer = CsvWriter(
                    sink, resolved.names, excel_safe=excel_safe, encoding=encoding, lineterminator=lineterminator
                )
                with LazyProgress(path.name, enabled=progress, unit="B" if route == "copy" else "rows") as bar:
                    if route == "copy":
                        rows = _copy_rows(sess, resolved, writer, excel_safe=excel_safe, bar=bar)
                    else:
                        writer.write_header()
                        for _, columns in _chunks(sess, resolved, route, rows_per_chunk, application_name):
                            writer.write_columns(columns)
                            bar.update(len(columns[0]) if columns else 0)
                        rows = writer.rows
                writer.close()
            return rows

        if use_copy:
            route: ExportRoute = "copy"
            rows = attempt("copy")
        else:
            route, rows = _run_routes(sess, resolved, attempt, application_name)
    return ExportResult(path, rows, path.stat().st_size, time.perf_counter() - started, route)


def export_parquet(
    session: AnySession,
    query: t.Any,
    path: str | os.PathLike[str],
    *,
    params: t.Mapping[str, t.Any] | None = None,
    chunksize: int | None = None,
    compression: str | None = "snappy",
    progress: bool = True,
    application_name: str | None = None,
    partition_by: t.Sequence[str] | str | None = None,
) -> ExportResult:
    """Write the rows of ``query`` to a Parquet file at ``path``, one row group per chunk.

    With ``partition_by`` (column names), ``path`` is a hive-partitioned directory instead
    (``kind=purchase/part-0.parquet``), written as :mod:`analysis.export.dataset` says.

    Column types are the ones ``frame()`` gives (exact decimals, timezone-aware timestamps,
    nullable integers), fixed by the query rather than guessed from the first chunk.
    ``compression`` is a Parquet codec: ``"snappy"`` (as pandas), ``"zstd"``, ``"gzip"`` or
    ``None``.
    """
    started = time.perf_counter()
    path = Path(path)
    rows_per_chunk = check_chunksize(chunksize, DEFAULT_CHUNKSIZE)
    if partition_by is not None:
        return _export_dataset(
            plain_session(session), query, path, params=params, chunksize=rows_per_chunk, compression=compression,
            progress=progress, application_name=application_name, partition_by=partition_by, started=started,
        )
    check_target(path)
    sess = plain_session(session)
    with _reporting(path):
        resolved = resolve_query(query, params=params, session=sess)

        def attempt(route: ExportRoute) -> int:
            with atomic_output(path) as raw, LazyProgress(path.name, enabled=progress) as bar:
                writer = ParquetSink(raw, resolved.names, compression)
                try:
                    for names, columns in _chunks(sess, resolved, route, rows_per_chunk, application_name):
                        if not writer.described:
                            writer.describe(_empty_like(names, columns))
                        table = _arrow_table(columns)
                        if table.num_rows:
                            writer.write(table)
                        bar.update(table.num_rows)
                    if writer.rows == 0:
                        writer.write(_empty_frame(sess, resolved))
                finally:
                    writer.close()
            return writer.rows

        route, rows = _run_routes(sess, resolved, attempt, application_name)
    return ExportResult(path, rows, path.stat().st_size, time.perf_counter() - started, route)


def _export_dataset(
    session: sa.orm.Session,
    query: t.Any,
    path: Path,
    *,
    params: t.Mapping[str, t.Any] | None,
    chunksize: int,
    compression: str | None,
    progress: bool,
    application_name: str | None,
    partition_by: t.Sequence[str] | str,
    started: float,
) -> ExportResult:
    from .dataset import check_partition_by, dataset_bytes, write_dataset

    check_target(path if not path.is_dir() else path.parent / (path.name + ".parquet"))
    with _reporting(path):
        resolved = resolve_query(query, params=params, session=session)
        engine = bind_for(session, resolved.statement)
        plans = read_routes.column_plans(resolved, engine.dialect, False)
        kinds = {plan.name: plan.kind for plan in plans} if plans is not None else {}
        columns = check_partition_by(partition_by, resolved.names, kinds)

        def attempt(route: ExportRoute) -> int:
            with LazyProgress(path.name, enabled=progress) as bar:
                tables = (
                    _arrow_table(chunk).rename_columns(resolved.names)
                    for _, chunk in _chunks(session, resolved, route, chunksize, application_name)
                )
                return write_dataset(path, tables, columns, compression=compression, on_rows=bar.update)

        route, rows = _run_routes(session, resolved, attempt, application_name)
    return ExportResult(path, rows, dataset_bytes(path) if path.exists() else 0, time.perf_counter() - started, route)


def export_frame(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    compression: str | dict[str, t.Any] | None = "infer",
    excel_safe: bool = True,
    encoding: str = "utf-8",
) -> ExportResult:
    """Write a DataFrame that is already in memory (a report that computes one) atomically."""
    started = time.perf_counter()
    path = Path(path)
    check_target(path)
    with _reporting(path), atomic_output(path) as raw:
        if output_format(path) == "parquet":
            frame.to_parquet(raw, index=False)
        else:
            with compressed(raw, compression_options(path, compression), path) as sink:
                writer = CsvWriter(sink, [str(c) for c in frame.columns], excel_safe=excel_safe, encoding=encoding)
                writer.write_header()
                writer.write_frame(frame)
                writer.close()
    return ExportResult(path, len(frame), path.stat().st_size, time.perf_counter() - started, "frame")


def write_csv_stream(
    session: AnySession,
    query: t.Any,
    sink: t.BinaryIO,
    *,
    params: t.Mapping[str, t.Any] | None = None,
    excel_safe: bool = True,
    encoding: str = "utf-8",
    application_name: str | None = None,
) -> int:
    """Write CSV to an open binary stream (stdout); not atomic, as a stream cannot be.

    ``query`` may also be a DataFrame (a report that computes one).
    """
    if _is_frame(query):
        writer = CsvWriter(sink, [str(c) for c in query.columns], excel_safe=excel_safe, encoding=encoding)
        writer.write_header()
        writer.write_frame(query)
        writer.close()
        return len(query)
    sess = plain_session(session)
    with _reporting(None):
        resolved = resolve_query(query, params=params, session=sess)
        writer = CsvWriter(sink, resolved.names, excel_safe=excel_safe, encoding=encoding)
        writer.write_header()

        def attempt(route: ExportRoute) -> int:
            try:
                for _, columns in _chunks(sess, resolved, route, DEFAULT_CHUNKSIZE, application_name):
                    writer.write_columns(columns)
            except RouteUnavailable:
                if writer.rows:  # a stream cannot be taken back
                    raise ExportError("The query's column types changed midway; the output is incomplete.") from None
                raise
            return writer.rows

        _run_routes(sess, resolved, attempt, application_name)
        writer.close()
    return writer.rows


# -- the routes ----------------------------------------------------------------------------------


def _chunks(
    session: sa.orm.Session, resolved: ResolvedQuery, route: ExportRoute, chunksize: int, application_name: str | None
) -> t.Iterator[tuple[list[str], list[t.Any]]]:
    """The query's converted columns by ``route`` (a read route), ``chunksize`` rows at a time."""
    if route not in ("arrow", "arrow-cast-all", "stream"):
        raise ValueError(f"not a read route: {route!r}")
    engine = bind_for(session, resolved.statement)
    plans = read_routes.column_plans(resolved, engine.dialect, False)
    yield from read_routes.converted_batches(
        session, engine, resolved, plans, route,
        application_name=None if application_name is None else application_name[:50] + " (export)",
        batch_rows=chunksize,
    )


def _run_routes(
    session: sa.orm.Session, resolved: ResolvedQuery, attempt: t.Callable[[ExportRoute], int],
    application_name: str | None,
) -> tuple[ExportRoute, int]:
    """Run ``attempt`` by the read pipeline's route machine; an attempt writes atomically, so
    nothing of one that gave up midway remains."""
    engine = bind_for(session, resolved.statement)
    routes = t.cast("list[ExportRoute]", read_routes.candidate_routes(session, engine, application_name))
    return read_routes.run_routes(routes, attempt)


def _arrow_table(columns: list[t.Any]) -> pa.Table:
    import pyarrow as pa

    arrays = [_arrow_column(column) for column in columns]
    return pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


def _arrow_column(column: t.Any) -> pa.Array | pa.ChunkedArray:
    """A converted column as Arrow; object arrays (JSON, custom types) value by value."""
    import numpy as np
    import pyarrow as pa

    from .csv import spell_scalar

    if not isinstance(column, np.ndarray):
        return column
    try:
        array = pa.array(column, from_pandas=True)
        if not pa.types.is_nested(array.type):
            return array
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    return pa.array([None if v is None else v if isinstance(v, str) else spell_scalar(v) for v in column], pa.string())


def _use_copy(session: sa.orm.Session, resolved: ResolvedQuery, *, method: str, lineterminator: str) -> bool:
    from .pgcopy import supports_copy

    if method not in ("auto", "copy", "stream"):
        raise ValueError(f"method must be 'auto', 'copy' or 'stream', not {method!r}.")
    if method == "stream":
        return False
    engine = bind_for(session, resolved.statement)
    reason = None
    if not supports_copy(engine):
        reason = f"the database is {engine.dialect.name} (+{engine.dialect.driver}), not PostgreSQL with psycopg"
    elif lineterminator != "\n":
        reason = "COPY ends records with \\n only"
    else:
        processed = _processed_in_python(session, engine, resolved)
        if processed:
            reason = (
                f"the column{'s' if len(processed) > 1 else ''} {', '.join(map(repr, processed))}"
                " get their values from Python (a TypeDecorator or PickleType), which the server's"
                " COPY cannot apply"
            )
    if reason is None:
        return True
    if method == "copy":
        raise ExportError(f"Cannot export with COPY: {reason}. Use method='auto' or 'stream'.")
    return False


#: Rows read to learn whether a column's Python processing changes its values.
PROCESSING_SAMPLE_ROWS = 200


def _processed_in_python(session: sa.orm.Session, engine: sa.Engine, resolved: ResolvedQuery) -> list[str]:
    """The columns whose values the CSV must spell as Python gives them, not as the database
    stores them: a TypeDecorator or PickleType whose result processing changes the value
    (``EncodedText`` decodes; a timezone tag on UTC timestamps changes nothing that is spelled).

    Learned from the first rows: each value as stored and as processed, spelled both ways.
    """
    from .csv import spell_value

    plans = read_routes.column_plans(resolved, engine.dialect, False)
    if plans is None:
        return []
    suspects = [i for i, plan in enumerate(plans) if plan.processor is not None]
    if not suspects:
        return []
    if resolved.expressions is None:  # a UNION: its columns cannot be read unprocessed
        return [plans[i].name for i in suspects]
    sample = t.cast(sa.Select[t.Any], read_routes.raw_statement(resolved, plans, engine.dialect.name, casts="none"))
    with read_connection(session, resolved.statement) as conn:
        rows = conn.execute(sample.limit(PROCESSING_SAMPLE_ROWS), resolved.params).fetchall()
    changed = []
    for i in suspects:
        processor = plans[i].processor
        assert processor is not None
        for row in rows:
            stored = row[i]
            if stored is None:
                continue
            try:
                same = spell_value(processor(stored)) == spell_value(stored)
            except Exception:  # a processor that cannot take the driver's value as it is
                same = False
            if not same:
                changed.append(plans[i].name)
                break
    return changed


def _copy_rows(
    session: sa.orm.Session, resolved: ResolvedQuery, writer: CsvWriter, *, excel_safe: bool, bar: LazyProgress
) -> int:
    from .pgcopy import copy_csv

    def write(block: bytes) -> None:
        writer.write_bytes(block)
        bar.update(len(block))

    with read_connection(session, resolved.statement) as conn:
        if not session_has_writes(session, flush=False):
            make_transaction_read_only(conn)  # a connection of our own: read-only whatever the Workbench
        rows = copy_csv(
            conn, resolved.statement, resolved.params, names=resolved.names, excel_safe=excel_safe, write=write
        )
    return int(rows or 0)


def _empty_frame(session: sa.orm.Session, resolved: ResolvedQuery) -> pd.DataFrame:
    """The query's columns with no rows, for the schema of an empty Parquet file."""
    frame = read_frame(session, resolved.statement, params=resolved.params or None, progress=False)
    return frame.iloc[:0]


def _empty_like(names: list[str], columns: list[t.Any]) -> pd.DataFrame:
    """A DataFrame with no rows and the dtypes frame() gives these converted columns."""
    from ..read.columns import assemble

    heads = [[column[:0]] for column in columns]
    return assemble(names, heads, "numpy_nullable")


def _is_frame(value: t.Any) -> bool:
    import sys

    pandas = sys.modules.get("pandas")  # not imported: cannot be a DataFrame
    return pandas is not None and isinstance(value, pandas.DataFrame)


@contextlib.contextmanager
def _reporting(path: Path | None) -> t.Iterator[None]:
    """Errors as :class:`ExportError`/:class:`QueryError` naming the file and the cause; a lost
    connection as :class:`DatabaseUnavailableError` saying the file was left as it was."""
    try:
        yield
    except DatabaseUnavailableError as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        if path is None:
            raise
        raise connection_lost_error(cause, consequence=f"{str(path)!r} was left as it was") from cause
    except AnalysisError:
        raise
    except sa.exc.DBAPIError as e:
        if is_connection_lost(e) and path is not None:
            raise connection_lost_error(e, consequence=f"{str(path)!r} was left as it was") from e
        raise query_error(e) from e
    except BrokenPipeError:
        raise  # the reader of a stream went away: the caller decides (the CLI stops quietly)
    except OSError as e:
        where = f" {str(path)!r}" if path is not None else ""
        reason = e.strerror or str(e)
        hint = ""
        if isinstance(e, FileNotFoundError) and path is not None and not path.parent.exists():
            reason, hint = f"the directory {str(path.parent)!r} does not exist", " Create it first."
        elif isinstance(e, PermissionError):
            hint = " Choose a directory you can write to."
        elif isinstance(e, IsADirectoryError):
            hint = " Give a file name, not a directory."
        raise ExportError(f"Cannot write{where}: {reason}.{hint}") from e
    except (ValueError, UnicodeError) as e:
        raise ExportError(f"Cannot export{'' if path is None else f' to {str(path)!r}'}: {e}") from e
