"""CSV and Parquet files from any query: streamed, atomic, with progress.

>>> wb.export_csv(sa.select(User).where(User.active), "active-users.csv")
ExportResult(path='active-users.csv', rows=4210, bytes=388113, seconds=0.21, route='arrow')

* **Any query form** ``frame()`` accepts (``select()``, ``Model.query``, a model, a ``Table``,
  SQL text with ``:name`` parameters), resolved by :func:`analysis.queries.resolve_query`.
* **Streaming.** Rows go from the database to the file chunk by chunk (see
  :mod:`analysis.batches`: Arrow batches from an ADBC driver, else ``Workbench.frames()`` with
  server-side cursors on PostgreSQL and MariaDB), so memory does not grow with the table. On
  PostgreSQL with psycopg, CSV goes through the server's ``COPY ... TO STDOUT`` instead (see
  :mod:`analysis.pgcopy`), which writes the same CSV.
* **Atomic.** The file is written beside the target and renamed over it only when complete
  (:mod:`analysis.atomic`); after an error, Ctrl-C or ``kill -9`` an earlier file at that
  path is untouched and no temporary file is left.
* **Read-only.** The rows are read in a transaction of their own that cannot write (unless
  the session has uncommitted writes the export must see; then it reads through the session).
* **CSV as in** :mod:`analysis.csvformat`: RFC 4180 with a header, UTF-8 (``utf-8-sig`` adds
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

from .atomic import atomic_output
from .batches import ROUTES, DriverFailed, FastPathUnavailable, arrow_route_possible, iter_chunks
from .errors import AnalysisError, ExportError
from .outputs import (
    check_encoding,
    check_target,
    compressed,
    compression_options,
    output_format,
    progress_bar,
    size_text,
)

if t.TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .session import Workbench

#: Rows per chunk when none is given: large enough to amortise per-chunk costs, small enough
#: that a chunk of a wide table stays in the tens of megabytes.
DEFAULT_CHUNKSIZE = 20_000


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote: where, how many rows and bytes, how long it took, which route."""

    path: Path
    rows: int
    bytes: int
    seconds: float
    #: ``"copy"`` (PostgreSQL's COPY), ``"arrow"`` or ``"arrow-cast-all"`` (an Arrow-native
    #: driver, in batches), ``"stream"`` (``frames()``, in chunks) or ``"frame"`` (a
    #: DataFrame already in memory).
    route: str

    def summary(self) -> str:
        """``Wrote 1,204 rows (88.2 kB) to signups.csv in 0.31 s.``"""
        return f"Wrote {self.rows:,} rows ({size_text(self.bytes)}) to {self.path} in {self.seconds:.2f} s."

    def __repr__(self) -> str:
        return (
            f"ExportResult(path={str(self.path)!r}, rows={self.rows}, bytes={self.bytes},"
            f" seconds={self.seconds:.2f}, route={self.route!r})"
        )


def export_csv(
    workbench: Workbench,
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
    method: str = "auto",
) -> ExportResult:
    """Write the rows of ``query`` to a CSV file at ``path``; see the module docstring.

    ``compression`` is ``"infer"`` (from a ``.gz``/``.zip`` suffix), ``None``, ``"gzip"``,
    ``"zip"``, or a dict such as ``{"method": "gzip", "compresslevel": 1}`` as in pandas.
    ``method`` is ``"auto"`` (COPY on PostgreSQL when it can give the same CSV), ``"copy"``
    (refuse to export otherwise) or ``"stream"``.
    """
    from .csvformat import CsvWriter

    started = time.perf_counter()
    path = Path(path)
    compress = compression_options(path, compression)
    chunksize = _chunksize(chunksize)
    check_encoding(encoding)
    check_target(path)
    with _reporting(path):
        resolved = _resolve(workbench, query, params)
        use_copy = _use_copy(workbench, resolved, method=method, lineterminator=lineterminator)

        def attempt(route: str) -> int:
            with atomic_output(path) as raw, compressed(raw, compress, path) as sink:
                writer = CsvWriter(
                    sink, resolved.names, excel_safe=excel_safe, encoding=encoding, lineterminator=lineterminator
                )
                with progress_bar(progress, path, unit="B" if route == "copy" else "rows") as bar:
                    if route == "copy":
                        rows = _copy_rows(workbench, resolved, writer, excel_safe=excel_safe, bar=bar)
                    else:
                        writer.write_header()
                        for chunk in iter_chunks(workbench, resolved, chunksize, route=route):
                            writer.write(chunk)
                            bar(len(chunk))
                        rows = writer.rows
                writer.close()
            return rows

        route, rows = _run_routes(workbench, resolved, attempt, copy=use_copy)
    return ExportResult(path, rows, path.stat().st_size, time.perf_counter() - started, route)


def export_parquet(
    workbench: Workbench,
    query: t.Any,
    path: str | os.PathLike[str],
    *,
    params: t.Mapping[str, t.Any] | None = None,
    chunksize: int | None = None,
    compression: str | None = "snappy",
    progress: bool = True,
) -> ExportResult:
    """Write the rows of ``query`` to a Parquet file at ``path``, one row group per chunk.

    Column types are the ones ``frame()`` gives (exact decimals, timezone-aware timestamps,
    nullable integers), fixed by the query rather than guessed from the first chunk.
    ``compression`` is a Parquet codec: ``"snappy"`` (as pandas), ``"zstd"``, ``"gzip"`` or
    ``None``.
    """
    started = time.perf_counter()
    path = Path(path)
    chunksize = _chunksize(chunksize)
    check_target(path)
    with _reporting(path):
        resolved = _resolve(workbench, query, params)

        def attempt(route: str) -> int:
            with atomic_output(path) as raw, progress_bar(progress, path, unit="rows") as bar:
                writer = _ParquetSink(raw, resolved.names, compression)
                try:
                    for chunk in iter_chunks(workbench, resolved, chunksize, route=route):
                        writer.write(chunk)
                        bar(len(chunk))
                    if writer.rows == 0:
                        writer.write(_empty_frame(workbench, resolved))
                finally:
                    writer.close()
            return writer.rows

        route, rows = _run_routes(workbench, resolved, attempt, copy=False)
    return ExportResult(path, rows, path.stat().st_size, time.perf_counter() - started, route)


class _ParquetSink:
    """One row group per chunk; the schema is the first chunk's, later chunks are cast to it."""

    def __init__(self, raw: t.BinaryIO, names: list[str], compression: str | None) -> None:
        self.raw = raw
        self.names = names
        self.compression = compression or "none"
        self.rows = 0
        self._writer: t.Any = None

    def write(self, chunk: t.Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if _is_frame(chunk):
            table = pa.Table.from_pandas(chunk, preserve_index=False)
        else:
            table = chunk
        table = table.rename_columns(self.names)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.raw, table.schema, compression=self.compression)
        elif table.schema != self._writer.schema:
            table = self._conform(table)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _conform(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        try:
            return table.cast(self._writer.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
            raise ExportError(
                f"A later chunk of the query has other column types than the first ({e})."
                " Parquet needs one type per column: CAST the column in the SQL."
            ) from e

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def export_frame(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    compression: str | dict[str, t.Any] | None = "infer",
    excel_safe: bool = True,
    encoding: str = "utf-8",
) -> ExportResult:
    """Write a DataFrame that is already in memory (a report that computes one) atomically."""
    from .csvformat import CsvWriter

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
    workbench: Workbench,
    query: t.Any,
    sink: t.BinaryIO,
    *,
    params: t.Mapping[str, t.Any] | None = None,
    excel_safe: bool = True,
    encoding: str = "utf-8",
) -> int:
    """Write CSV to an open binary stream (stdout); not atomic, as a stream cannot be."""
    from .csvformat import CsvWriter

    if _is_frame(query):
        writer = CsvWriter(sink, [str(c) for c in query.columns], excel_safe=excel_safe, encoding=encoding)
        writer.write_header()
        writer.write_frame(query)
        writer.close()
        return len(query)
    with _reporting(None):
        resolved = _resolve(workbench, query, params)
        writer = CsvWriter(sink, resolved.names, excel_safe=excel_safe, encoding=encoding)
        writer.write_header()
        route = "arrow" if arrow_route_possible(workbench, resolved) else "stream"
        try:
            for chunk in iter_chunks(workbench, resolved, DEFAULT_CHUNKSIZE, route=route):
                writer.write(chunk)
        except FastPathUnavailable:
            if writer.rows:
                raise ExportError("The query's column types changed midway; the output is incomplete.") from None
            for chunk in iter_chunks(workbench, resolved, DEFAULT_CHUNKSIZE, route="stream"):
                writer.write(chunk)
        writer.close()
    return writer.rows


# -- the routes ----------------------------------------------------------------------------------


def _resolve(workbench: Workbench, query: t.Any, params: t.Mapping[str, t.Any] | None) -> t.Any:
    from .queries import resolve_query

    workbench.activate()
    return resolve_query(query, params=params, session=workbench.session)


def _use_copy(workbench: Workbench, resolved: t.Any, *, method: str, lineterminator: str) -> bool:
    from .pgcopy import supports_copy
    from .routing import bind_for

    if method not in ("auto", "copy", "stream"):
        raise ValueError(f"method must be 'auto', 'copy' or 'stream', not {method!r}.")
    if method == "stream":
        return False
    engine = bind_for(workbench.session, resolved.statement)
    reason = None
    if not supports_copy(engine):
        reason = f"the database is {engine.dialect.name} (+{engine.dialect.driver}), not PostgreSQL with psycopg"
    elif lineterminator != "\n":
        reason = "COPY ends records with \\n only"
    if reason is None:
        return True
    if method == "copy":
        raise ExportError(f"Cannot export with COPY: {reason}. Use method='auto' or 'stream'.")
    return False


def _copy_rows(workbench: Workbench, resolved: t.Any, writer: t.Any, *, excel_safe: bool, bar: t.Callable[[int], None]) -> int:
    from .pgcopy import copy_csv
    from .routing import read_connection, session_has_writes

    def write(block: bytes) -> None:
        writer.write_bytes(block)
        bar(len(block))

    session = workbench.session
    with read_connection(session, resolved.statement) as conn:
        if not session_has_writes(session, flush=False):
            # A connection of our own: make its transaction read-only whatever the Workbench.
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        rows = copy_csv(conn, resolved.statement, resolved.params, names=resolved.names, excel_safe=excel_safe, write=write)
    return int(rows or 0)


def _run_routes(
    workbench: Workbench, resolved: t.Any, attempt: t.Callable[[str], int], *, copy: bool
) -> tuple[str, int]:
    """Run ``attempt`` on the best route; if the Arrow route gives up midway, start again on
    the next one (``attempt`` writes atomically, so nothing of the failed try remains)."""
    if copy:
        return "copy", attempt("copy")
    routes = ROUTES if arrow_route_possible(workbench, resolved) else ("stream",)
    for route in routes[:-1]:
        try:
            return route, attempt(route)
        except DriverFailed:
            break
        except FastPathUnavailable:
            continue
    return routes[-1], attempt(routes[-1])


def _empty_frame(workbench: Workbench, resolved: t.Any) -> pd.DataFrame:
    """The query's columns with no rows, for the schema of an empty Parquet file."""
    frame = workbench.frame(resolved.statement, params=resolved.params or None, dtype_backend="pyarrow", progress=False)
    return frame.iloc[:0]


def _is_frame(value: t.Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_parquet")


@contextlib.contextmanager
def _reporting(path: Path | None) -> t.Iterator[None]:
    """Errors as :class:`ExportError`/:class:`QueryError` naming the file and the cause."""
    try:
        yield
    except AnalysisError:
        raise
    except sa.exc.DBAPIError as e:
        from .queries import query_error

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


def _chunksize(chunksize: int | None) -> int:
    if chunksize is None:
        return DEFAULT_CHUNKSIZE
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive number of rows, not {chunksize!r}.")
    return chunksize


