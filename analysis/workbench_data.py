"""What a Workbench does with data: DataFrames, files, reports and inserts.

A mixin of :class:`~analysis.session.Workbench`, kept apart from the session's lifecycle. Each
method is the typed front door of a module that does the work (frames, export, reports,
inserts), imported when first used so that ``import analysis`` stays light.
"""

from __future__ import annotations

import os
import typing as t

if t.TYPE_CHECKING:
    import pandas as pd
    from flask import Flask

    from .export import ExportResult


class DataMethods:
    """``frame``, ``frames``, ``export_csv``, ``export_parquet``, ``report``, ``reports`` and
    ``insert_frame``; they need the Workbench's ``activate()`` and its session."""

    if t.TYPE_CHECKING:
        app: Flask

        def activate(self) -> None: ...


    def frame(
        self,
        query: t.Any,
        *,
        params: t.Mapping[str, t.Any] | None = None,
        index_col: str | t.Sequence[str] | None = None,
        columns: t.Sequence[str] | None = None,
        dtype_backend: t.Literal["numpy_nullable", "pyarrow"] = "numpy_nullable",
        coerce_float: bool = False,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Run ``query`` and return its whole result as a DataFrame with faithful dtypes.

        ``query``: a ``Model.query...``, a ``select()`` / ``db.select()``, a model class, a
        ``Table``, or a SQL string with ``:name`` parameters bound from ``params``. Columns are
        named after model attributes and labels; integers stay integers with NULLs, booleans
        booleans, timestamps ``datetime64`` (UTC for timezone-aware columns), Enums categoricals
        and Numeric exact decimals (``coerce_float=True`` for floats); see the README's dtype
        table. ``dtype_backend="pyarrow"`` gives Arrow dtypes throughout. The query sees this
        session's uncommitted writes; otherwise it is read on a separate read-only connection,
        through an Arrow-native driver where one is installed. A progress bar appears for
        large results unless ``progress=False``.

        >>> wb.frame(User.query.filter_by(country="DE"), index_col="id")
        >>> wb.frame("SELECT kind, count(*) AS n FROM events WHERE occurred_at > :since GROUP BY kind",
        ...          params={"since": "2024-01-01"})
        """
        from .frames import read_frame

        return read_frame(
            self, query, params=params, index_col=index_col, columns=columns,
            dtype_backend=dtype_backend, coerce_float=coerce_float, progress=progress,
        )

    def frames(
        self,
        query: t.Any,
        *,
        chunksize: int = 100_000,
        params: t.Mapping[str, t.Any] | None = None,
        index_col: str | t.Sequence[str] | None = None,
        columns: t.Sequence[str] | None = None,
        dtype_backend: t.Literal["numpy_nullable", "pyarrow"] = "numpy_nullable",
        coerce_float: bool = False,
    ) -> t.Iterator[pd.DataFrame]:
        """Like :meth:`frame`, as DataFrames of at most ``chunksize`` rows.

        Memory stays bounded by the chunk: PostgreSQL and MariaDB read through a server-side
        cursor, SQLite incrementally. The connection is held only while iterating and is
        released when the iterator is exhausted, closed (``with wb.frames(...) as chunks:``)
        or garbage-collected.

        >>> for chunk in wb.frames(Event, chunksize=50_000):
        ...     totals.append(chunk.groupby("kind").size())
        """
        from .frames import iter_frames

        return iter_frames(
            self, query, chunksize=chunksize, params=params, index_col=index_col, columns=columns,
            dtype_backend=dtype_backend, coerce_float=coerce_float,
        )

    def insert_frame(
        self, model: t.Any, df: pd.DataFrame, *, chunksize: int = 10_000, on_conflict: str = "error"
    ) -> int:
        """Bulk-insert ``df`` into ``model``'s table in this session's transaction.

        Columns are matched to the model by name (unknown or missing required columns are one
        error naming them), values converted for the column types (NaN/NaT/pd.NA are NULL), and
        rows sent in bulk (COPY on PostgreSQL). All or nothing: if a row fails, the transaction
        is rolled back and :class:`~analysis.InsertError` names the row. ``on_conflict``:
        ``"error"``, or on SQLite and PostgreSQL ``"ignore"`` (skip rows that would duplicate a
        primary key or unique value) and ``"update"`` (overwrite the rows with the same primary
        key). Needs ``writable=True``; does
        not commit (a job commits when it ends; in a notebook, ``db.session.commit()``).
        Returns the number of rows written.

        >>> wb.insert_frame(Data, pd.DataFrame({"value": [1.5, 2.0], "source": "sensor-1"}))
        2
        """
        from .inserts import insert_into

        return insert_into(self, model, df, chunksize=chunksize, on_conflict=on_conflict)

    def export_csv(
        self,
        query: t.Any,
        path: str | os.PathLike[str],
        *,
        params: t.Mapping[str, t.Any] | None = None,
        chunksize: int | None = None,
        compression: str | dict[str, t.Any] | None = "infer",
        excel_safe: bool = True,
        progress: bool = True,
        encoding: str = "utf-8",
    ) -> ExportResult:
        """Write the rows of ``query`` (anything :meth:`frame` accepts) to a CSV file.

        Streamed chunk by chunk (``chunksize`` rows, default 20,000; on PostgreSQL the server's
        COPY), so memory does not grow with the table; atomic, so an earlier file at ``path``
        survives any failure; read-only. ``.gz``/``.zip`` names are compressed. ``excel_safe``
        neutralises text a spreadsheet would run as a formula; ``encoding="utf-8-sig"`` adds
        the BOM Excel wants. Returns an :class:`~analysis.export.ExportResult` (``rows``,
        ``path``, ``bytes``, ``seconds``).

        >>> wb.export_csv(User.query.filter_by(country="DE"), "de-users.csv").rows
        412
        """
        from .export import export_csv

        self.activate()
        return export_csv(
            self, query, path, params=params, chunksize=chunksize, compression=compression,
            excel_safe=excel_safe, progress=progress, encoding=encoding,
        )

    def export_parquet(
        self,
        query: t.Any,
        path: str | os.PathLike[str],
        *,
        params: t.Mapping[str, t.Any] | None = None,
        chunksize: int | None = None,
        compression: str | None = "snappy",
        progress: bool = True,
    ) -> ExportResult:
        """Write the rows of ``query`` to a Parquet file (pyarrow), streamed and atomic.

        Columns keep the types :meth:`frame` gives (exact decimals, UTC timestamps, nullable
        integers); ``compression`` is a Parquet codec (``"snappy"``, ``"zstd"``, ``None``).
        """
        from .export import export_parquet

        self.activate()
        return export_parquet(
            self, query, path, params=params, chunksize=chunksize, compression=compression, progress=progress
        )

    def report(self, name: str, **params: t.Any) -> pd.DataFrame:
        """Run the named report (see :func:`analysis.report`) and return its rows.

        >>> wb.report("signups-by-week", since=datetime.date(2026, 1, 1))
        """
        from . import reports

        self.activate()
        built = reports.get(name, self.app).build(**params)
        if type(built).__name__ == "DataFrame":
            return built
        return self.frame(built)

    def reports(self) -> pd.DataFrame:
        """The reports available here: name, parameters, description."""
        from . import reports

        return reports.listing(self.app)
