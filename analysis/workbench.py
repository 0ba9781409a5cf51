"""The front door: :func:`connect`, :func:`current` and the :class:`Workbench`.

A Workbench holds one Flask app, ONE app context kept current across cells and threads
(:mod:`analysis.appctx`), and that context's Flask-SQLAlchemy session, for a whole notebook,
script or job. Between cells, :meth:`Workbench.release` ends a transaction that only read, so
its connection goes back to the pool instead of sitting "idle in transaction" (PostgreSQL) or
holding a read snapshot (SQLite). Uncommitted writes are never discarded: they are kept and
reported.

Each data method (``frame``, ``frames``, ``export_csv``...) is the typed front door of a
pipeline (:mod:`analysis.read`, :mod:`analysis.export`, :mod:`analysis.insert`,
:mod:`analysis.reports`), to which it hands the session and its options explicitly.
"""

from __future__ import annotations

import atexit
import html
import os
import sys
import typing as t

import sqlalchemy as sa
from flask import Flask

from . import cells, reports
from .appctx import ContextKeeper
from .connections import EngineGuard, SessionGuard, connection_has_writes, session_connections
from .errors import (
    AnalysisError,
    AppNotFoundError,
    ConnectionClosedError,
    DatabaseUnavailableError,
    NotConnectedError,
    ReadOnlyError,
    UncommittedChangesError,
)
from .errors import first_line as _first_line
from .locate import AppSource, build_app, import_string_for

if t.TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    from flask_sqlalchemy import SQLAlchemy
    from flask_sqlalchemy.session import Session
    from sqlalchemy.orm import scoped_session

    from .echo import StatementEcho
    from .explore import Histogram, Profile, Schema
    from .export import ExportResult
    from .insert import OnConflict
    from .jupysql import JupySQLConnection
    from .read import FrameIterator
    from .read.plans import DtypeBackend
    from .snapshot import HeldSnapshot

_current: Workbench | None = None


def connect(
    app: AppSource = None,
    *,
    config: t.Mapping[str, t.Any] | None = None,
    writable: bool = False,
    echo: bool = False,
) -> Workbench:
    """Build the Flask app and open a Workbench on its database.

    ``app`` is a Flask app, an app factory, or an import string in ``flask --app`` notation
    (``"my_app"``, ``"my_app:create_app"``, ``"my_app:create_app('production')"``); by default
    the ``FLASK_APP`` environment variable. ``config`` is passed to the factory. The connection
    is read-only unless ``writable=True``. ``echo=True`` prints every statement run (see
    :attr:`Workbench.echo`).

    Connecting again replaces the current Workbench, but only once the new one is open: if
    the app cannot be built or its database does not answer, the error says so and the
    current Workbench stays open and current. Given the current Workbench's own app object,
    ``connect`` switches that Workbench's mode instead, without building the app again (many
    factories can run only once per process). Either way, uncommitted writes are never
    dropped: with some pending, connecting again raises
    :class:`~analysis.errors.UncommittedChangesError`. Cleanup also happens at interpreter
    exit (kernel shutdown or restart).

    >>> wb = analysis.connect("my_app:create_app")
    >>> wb.models["User"].query.count()
    >>> analysis.connect(wb.app, writable=True)      # the same Workbench, now writable
    """
    global _current
    previous = current_or_none()
    if previous is not None and isinstance(app, Flask) and app is previous.app and not config:
        previous.set_writable(writable)
        previous.echo = echo
        return previous
    if previous is not None:
        previous.refuse_pending("connecting again")
    try:
        flask_app = build_app(app, config)
        if previous is not None and flask_app is previous.app:  # a module's app, found again
            previous.set_writable(writable)
            previous.echo = echo
            return previous
        workbench = Workbench(flask_app, writable=writable)
        workbench.import_string = import_string_for(app)
        workbench.app_config = dict(config) if config is not None else None
        workbench.open()
        workbench.echo = echo
    except AnalysisError as e:
        if previous is not None:
            # The message is the user's one line: say there that nothing was lost.
            text = str(e).rstrip()
            end = "" if text.endswith((".", "?", "!")) else "."
            e.args = (f"{text}{end} The previous Workbench is still open and current: {previous!r}.",)
        raise
    if previous is not None:
        previous.close()
        workbench._context.follows(previous._context)
    _current = workbench
    return workbench


def current() -> Workbench:
    """The Workbench opened by the last :func:`connect`."""
    workbench = current_or_none()
    if workbench is None:
        raise NotConnectedError(
            "Not connected: call analysis.connect('my_app:create_app') (or %load_ext analysis"
            " in a notebook) first."
        )
    return workbench


def current_or_none() -> Workbench | None:
    """The open Workbench of the last :func:`connect`, or ``None``."""
    return _current if _current is not None and not _current.closed else None


class Workbench:
    """A live connection to a Flask app's database for notebooks, scripts and jobs.

    Attributes: ``app`` (the Flask app), ``db`` (its Flask-SQLAlchemy extension), ``session``
    (``db.session``), ``models`` (name -> model class), ``writable``.
    """

    def __init__(
        self,
        app: Flask,
        *,
        writable: bool = False,
        application_name: str | None = None,
        cell_hooks: bool = True,
    ) -> None:
        self.app = app
        self.writable = writable
        #: Whether to hook into IPython's cells; a job run inside a notebook does not.
        self.cell_hooks = cell_hooks
        self.application_name = (application_name or default_application_name(app))[:63]
        #: How another process builds the same app (``flask --app`` notation) and the config
        #: given to the factory, as :func:`connect` recorded them; Dask's workers use them.
        self.import_string: str | None = None
        self.app_config: dict[str, t.Any] | None = None
        self.closed = False
        self._opened = False
        self._context = ContextKeeper(app)
        self._guards: list[EngineGuard] = []
        self._session_guard: SessionGuard | None = None
        self._reported_changes: tuple[str, ...] = ()
        self._jupysql: JupySQLConnection | None = None
        self._echo: StatementEcho | None = None
        #: Each database's URL, password masked, by bind key (None: the default one), kept
        #: from open() so that a closed Workbench can still say what it was connected to.
        self._urls: dict[str | None, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Push the app context, guard the engines and check the database answers."""
        if self._opened:
            return
        if "sqlalchemy" not in self.app.extensions:
            raise AppNotFoundError(
                f"The app {self.app.name!r} has no Flask-SQLAlchemy extension: call"
                " db.init_app(app) in its factory."
            )
        self._context.push()
        self._opened = True
        atexit.register(self.close)
        try:
            self._urls = {
                key: engine.url.render_as_string(hide_password=True)
                for key, engine in sorted(self.db.engines.items(), key=_bind_order)
            }
            for engine in self.db.engines.values():
                guard = EngineGuard(engine, writable=self.writable, application_name=self.application_name)
                guard.install()
                self._guards.append(guard)
            self._session_guard = SessionGuard(self.db.session, writable=self.writable, is_own=self._is_own_session)
            self._session_guard.install()
            self._check_connection()
            from .read import adbc

            for engine in self.db.engines.values():
                adbc.warm_up(engine)
            if self.cell_hooks:
                cells.register(self, self._before_cell, self._after_cell)
                cells.show_briefly((AnalysisError,))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Roll back, remove the session, pop the app context and dispose the engines.

        Idempotent, and safe at interpreter exit. Anything uncommitted is rolled back.
        """
        global _current
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        if _current is self:
            _current = None
        if not self._opened:
            return
        cells.unregister(self)
        if self._echo is not None:
            self._echo.remove()
        if self._jupysql is not None:
            self._jupysql.close()
        # The context may have been pushed in another contextvars.Context (another cell, the
        # main thread at exit): make it current here, tear down, then restore.
        self._context.activate()
        try:
            try:
                self.db.session.rollback()
            finally:
                try:
                    self.db.session.remove()
                finally:
                    if self._session_guard is not None:
                        self._session_guard.remove()
                    from .read import adbc

                    for guard in self._guards:
                        guard.remove()
                        adbc.close_connections(guard.engine)
                        guard.engine.dispose()
        finally:
            self._context.close()

    def set_writable(self, writable: bool) -> None:
        """Switch between read-only and writable on the same app, without building it again.

        Refuses (:class:`~analysis.errors.UncommittedChangesError`) while the session holds
        uncommitted writes. The engines' pooled connections are closed, so every connection
        from now on has the new mode; if the database then does not answer, the old mode is
        restored and the error raised.
        """
        self._ensure_open()
        if writable == self.writable:
            return
        self.refuse_pending("switching to " + ("writable" if writable else "read-only"))
        self.activate()
        self.db.session.rollback()  # ends a transaction that only read
        before = self.writable
        try:
            self._apply_mode(writable)
            self._check_connection()
        except BaseException:
            self._apply_mode(before)
            raise

    def _apply_mode(self, writable: bool) -> None:
        if self._jupysql is not None:
            # JupySQL keeps one connection open: a new one, with the new mode, on next use.
            self._jupysql.close()
            self._jupysql = None
        self.writable = writable
        for guard in self._guards:
            guard.writable = writable
            guard.engine.dispose()  # pooled connections have the other mode's settings
        if self._session_guard is not None:
            self._session_guard.writable = writable

    def refuse_pending(self, action: str) -> None:
        """Raise :class:`~analysis.errors.UncommittedChangesError` if the session holds
        uncommitted writes, saying how to commit or roll them back before ``action``."""
        if self.closed:
            return
        self.activate()
        changes = self.pending_changes()
        jupysql = self._jupysql.connection if self._jupysql is not None and not self._jupysql.closed else None
        if jupysql is not None and jupysql.in_transaction() and connection_has_writes(jupysql):
            changes.append("statements run with %sql, not committed")
        if changes:
            raise UncommittedChangesError(
                f"Not {action}: the session has uncommitted changes ({'; '.join(changes)})."
                " Run db.session.commit() to save them or db.session.rollback() to discard"
                " them, then try again."
            )

    def activate(self) -> None:
        """Make this Workbench's app context the current one again, if it was lost."""
        self._ensure_open()
        self._context.activate()

    @property
    def echo(self) -> bool:
        """Whether every statement the ORM or the toolkit runs is printed (SQL, parameters,
        milliseconds, rows), in the output of the cell that runs it. Settable: ``wb.echo = True``."""
        return self._echo is not None

    @echo.setter
    def echo(self, on: bool) -> None:
        from .echo import StatementEcho

        if on and self._echo is None:
            self._ensure_open()
            self._echo = StatementEcho(self.db.engines.values())
            self._echo.install()
        elif not on and self._echo is not None:
            self._echo.remove()
            self._echo = None

    def use_jupysql(self, config: t.Any) -> JupySQLConnection:
        """Make JupySQL's ``%sql``, ``%%sql``, ``%sqlplot`` and ``%sqlcmd`` run on this
        Workbench's engine, with its read-only rule, until it closes (with JupySQL installed,
        ``%load_ext analysis`` makes each magic do this first). ``config`` is JupySQL's
        ``SqlMagic`` instance. Their transactions end after every cell like the session's.
        Calling it again returns the same connection."""
        from .jupysql import JupySQLConnection

        self._ensure_open()
        if self._jupysql is None:
            self._jupysql = JupySQLConnection(self.engine, config)
        return self._jupysql

    def _before_cell(self) -> None:
        if not self.closed:
            self.activate()

    def _after_cell(self) -> None:
        if not self.closed:
            self.release()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what users touch --------------------------------------------------------------------

    @property
    def db(self) -> SQLAlchemy:
        db: SQLAlchemy = self.app.extensions["sqlalchemy"]
        return db

    @property
    def session(self) -> scoped_session[Session]:
        self.activate()
        return self.db.session

    @property
    def engine(self) -> sa.Engine:
        self.activate()
        return self.db.engine

    @property
    def models(self) -> dict[str, type]:
        """Model classes by class name, from the app's declarative registry."""
        classes = {mapper.class_.__name__: mapper.class_ for mapper in self._registry.mappers}
        return dict(sorted(classes.items()))

    @property
    def _registry(self) -> sa.orm.registry:
        """The app's declarative registry (``db.Model.registry``; the extension's stubs omit it)."""
        registry: sa.orm.registry = t.cast(t.Any, self.db.Model).registry
        return registry

    def __getitem__(self, name: str) -> type:
        try:
            return self.models[name]
        except KeyError:
            raise KeyError(f"No model named {name!r}; models: {', '.join(self.models)}") from None

    def _ipython_key_completions_(self) -> list[str]:
        return list(self.models)

    def tables(self) -> pd.DataFrame:
        """One row per table the app declares: table, bind, model, rows, columns.

        ``bind`` is the table's bind key (``None``: the default database); ``model`` the class
        mapped to it, the base class for a table shared by inheritance, empty for a table no
        class maps (an association table); ``rows`` is missing for a table not in the
        database; ``columns`` the names frame() gives, with the column's own name in
        parentheses where the attribute is called otherwise (``_password (password)``).
        """
        import pandas as pd

        self.activate()
        mappers = list(self._registry.mappers)
        rows = []
        for bind_key, metadata in sorted(self.db.metadatas.items(), key=_bind_order):
            # Everything on the session's connection to this database: one connection each,
            # and the counts see the session's own uncommitted writes.
            connection = self.session.connection(bind_arguments={"bind": self.db.engines[bind_key]})
            inspector = sa.inspect(connection)
            for name, table in sorted(metadata.tables.items()):
                count = (
                    connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                    if inspector.has_table(table.name, schema=table.schema)
                    else None
                )
                rows.append((name, bind_key, _model_of(table, mappers), count, _column_names(table, mappers)))
        frame = pd.DataFrame(rows, columns=["table", "bind", "model", "rows", "columns"])
        # None, not NaN, for the default database (pandas would infer text and a missing value).
        frame["bind"] = pd.Series([row[1] for row in rows], dtype=object)
        frame["rows"] = frame["rows"].astype("Int64")
        return frame

    # -- data: the pipelines' front doors ----------------------------------------------------

    def frame(
        self,
        query: t.Any,
        *,
        params: t.Mapping[str, t.Any] | None = None,
        index_col: str | t.Sequence[str] | None = None,
        columns: t.Sequence[str] | None = None,
        dtype_backend: DtypeBackend = "numpy_nullable",
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
        from .read import read_frame

        return read_frame(
            self.session, query, params=params, index_col=index_col, columns=columns,
            dtype_backend=dtype_backend, coerce_float=coerce_float, progress=progress,
            application_name=self.application_name + " (fast)",
        )

    def frames(
        self,
        query: t.Any,
        *,
        chunksize: int = 100_000,
        params: t.Mapping[str, t.Any] | None = None,
        index_col: str | t.Sequence[str] | None = None,
        columns: t.Sequence[str] | None = None,
        dtype_backend: DtypeBackend = "numpy_nullable",
        coerce_float: bool = False,
    ) -> FrameIterator:
        """Like :meth:`frame`, as DataFrames of at most ``chunksize`` rows.

        Memory stays bounded by the chunk: PostgreSQL and MariaDB read through a server-side
        cursor, SQLite incrementally. The connection is held only while iterating and is
        released when the iterator is exhausted, closed (``with wb.frames(...) as chunks:``)
        or garbage-collected.

        >>> for chunk in wb.frames(Event, chunksize=50_000):
        ...     totals.append(chunk.groupby("kind").size())
        """
        from .read import iter_frames

        return iter_frames(
            self.session, query, chunksize=chunksize, params=params, index_col=index_col, columns=columns,
            dtype_backend=dtype_backend, coerce_float=coerce_float,
        )

    def arrow(self, query: t.Any, *, params: t.Mapping[str, t.Any] | None = None) -> pa.Table:
        """Run ``query`` (anything :meth:`frame` accepts) and return a :class:`pyarrow.Table`.

        The columns are in the canonical Arrow types of the README's table: ``decimal128(p, s)``
        for Numeric, ``timestamp[us, tz=UTC]`` for timezone-aware DateTime, a dictionary in the
        Enum's declared order, ``int64`` with NULLs... :meth:`frame` is this table converted to
        pandas. Read as :meth:`frame` reads: read-only, the fast route where there is one.

        >>> wb.arrow(Event).schema.field("amount").type
        Decimal128Type(decimal128(10, 2))
        """
        from .read import read_table

        return read_table(self.session, query, params=params, application_name=self.application_name + " (fast)")

    def polars(self, query: t.Any, *, params: t.Mapping[str, t.Any] | None = None) -> pl.DataFrame:
        """Run ``query`` and return a :class:`polars.DataFrame` (the ``polars`` extra).

        Types per the README's table: ``Decimal(p, s)``, ``Datetime("us", "UTC")``, ``pl.Enum``
        with the Enum's values in declared order, ``Int64`` with nulls, JSON as text.

        >>> wb.polars(User).group_by("plan").len()
        """
        from .read.tables import to_polars

        _require("polars", "polars")
        return to_polars(self.arrow(query, params=params))

    def dask(
        self,
        query: t.Any,
        *,
        npartitions: int | None = None,
        partition_on: str | None = None,
        params: t.Mapping[str, t.Any] | None = None,
        url_env: str | None = None,
        dtype_backend: DtypeBackend = "numpy_nullable",
    ) -> dd.DataFrame:
        """``query`` as a ``dask.dataframe.DataFrame`` whose partitions Dask's workers read in
        parallel (the ``dask`` extra), whichever scheduler runs them.

        Partitions are ranges of the primary key, or of ``partition_on`` (a column of the
        query), computed in the database: every row is in exactly one. ``npartitions`` defaults
        to one per million rows. The dtypes are :meth:`frame`'s, known without reading data;
        each partition is read through the same read path (fast routes, read-only) and its
        connections closed. Workers rebuild the app from the import string given to
        :func:`connect` (they need the app's code and environment), or build an engine from the
        database URL in the environment variable ``url_env``: no password is in the task graph.
        Inside :meth:`snapshot` (PostgreSQL) every partition reads the same snapshot; call
        ``compute()`` inside the block.

        >>> events = wb.dask(Event, npartitions=8)
        >>> events.groupby("kind")["amount"].sum().compute()
        """
        import uuid

        from .partitions import AppRecipe, read_dask

        _require("dask", "dask")
        config = tuple(sorted(self.app_config.items())) if self.app_config is not None else None
        recipe = AppRecipe(
            # With url_env the workers build an engine only: the app's recipe stays here.
            import_string=self.import_string if url_env is None else None,
            config=config if url_env is None else None,
            url_env=url_env, local_token=uuid.uuid4().hex, app_name=self.app.name,
        )
        return read_dask(
            self.session, query, recipe=recipe, npartitions=npartitions, partition_on=partition_on, params=params,
            dtype_backend=dtype_backend, binds=dict(self.db.engines),
        )

    def snapshot(self) -> t.ContextManager[HeldSnapshot]:
        """A block in which every read sees one snapshot of the database.

        >>> with wb.snapshot():
        ...     users = wb.frame(User)
        ...     events = wb.dask(Event, npartitions=8)   # PostgreSQL: the partitions too
        ...     totals = events.groupby("user_id").amount.sum().compute()

        PostgreSQL exports the snapshot and every read imports it (Dask partitions included);
        SQLite and MariaDB keep it in the session's transaction, which every read in the block
        goes through. The block only reads. See the README for what holds on each backend.
        """
        from .snapshot import hold

        return hold(self.session, list(self.db.engines.values()))

    def insert_frame(
        self, model: t.Any, df: pd.DataFrame, *, chunksize: int = 10_000, on_conflict: OnConflict = "error"
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
        from .insert import insert_into

        return insert_into(
            self.session, model, df, writable=self.writable, chunksize=chunksize, on_conflict=on_conflict,
            models=self.models,
        )

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

        return export_csv(
            self.session, query, path, params=params, chunksize=chunksize, compression=compression,
            excel_safe=excel_safe, progress=progress, encoding=encoding, application_name=self.application_name,
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
        partition_by: t.Sequence[str] | None = None,
    ) -> ExportResult:
        """Write the rows of ``query`` to a Parquet file (pyarrow), streamed and atomic.

        Columns keep the types :meth:`frame` gives (exact decimals, UTC timestamps, nullable
        integers); ``compression`` is a Parquet codec (``"snappy"``, ``"zstd"``, ``None``).
        ``partition_by`` (column names) writes a hive-partitioned directory at ``path`` instead
        (``kind=purchase/part-0.parquet``), which pyarrow.dataset, Dask, Polars, DuckDB and
        Spark read; atomic as a whole: a failed export leaves no dataset (or the earlier one).

        >>> wb.export_parquet(Event, "events", partition_by=["kind"])
        """
        from .export import export_parquet

        return export_parquet(
            self.session, query, path, params=params, chunksize=chunksize, compression=compression,
            progress=progress, application_name=self.application_name, partition_by=partition_by,
        )

    def profile(self, query: t.Any, *, params: t.Mapping[str, t.Any] | None = None) -> Profile:
        """One row per column of ``query`` (anything :meth:`frame` accepts), computed in the
        database by a few aggregate queries, never by reading the rows: ``type``, ``count``
        (non-NULL), ``nulls``, ``distinct``, ``min``, ``max``, ``mean``, ``std`` (numbers and
        booleans), ``top`` (the most frequent value) and ``top_freq``. In a notebook each
        column's share of NULLs shows as a bar.

        >>> wb.profile(Event)
        >>> wb.profile(User.query.filter_by(country="DE"))
        """
        from .explore import profile_query

        return profile_query(self.session, query, params)

    def histogram(
        self, query: t.Any, column: str, *, bins: int = 20, params: t.Mapping[str, t.Any] | None = None
    ) -> Histogram:
        """Counts of ``column``'s values in ``query``, computed in the database: ``bins``
        equal-width bins (``left``, ``right``, ``count``) for numbers and timestamps, value
        counts (``value``, ``count``) for text, Enums and booleans. ``.plot()`` draws it.

        >>> wb.histogram(Event, "amount", bins=30).plot()
        """
        from .explore import histogram_query

        return histogram_query(self.session, query, column, bins=bins, params=params)

    def schema(self, models: t.Iterable[t.Any] | None = None) -> Schema:
        """A diagram of the app's models (or of ``models``: classes or names): tables, columns
        and types, primary and foreign keys, relationships with their cardinality, and row
        counts. Drawn inline in JupyterLab (Mermaid), as tables elsewhere; ``str()`` is a text
        form and ``.save("schema.md")`` writes it to a file.

        >>> wb.schema()
        >>> wb.schema(["User", "Event"]).save("users-and-events.mmd")
        """
        from .explore import build_schema

        self.activate()
        return build_schema(self._registry, self.db.engines, models)

    def report(self, name: str, **params: t.Any) -> pd.DataFrame:
        """Run the named report (see :func:`analysis.report`) and return its rows.

        >>> wb.report("signups-by-week", since=datetime.date(2026, 1, 1))
        """
        import pandas as pd

        self.activate()
        built = reports.get(name, self.app).build(**params)
        if isinstance(built, pd.DataFrame):
            return built
        return self.frame(built)

    def reports(self) -> pd.DataFrame:
        """The reports available here: name, parameters, description."""
        return reports.listing(self.app)

    # -- transactions between cells ----------------------------------------------------------

    def pending_changes(self) -> list[str]:
        """Describe writes in the session's open transaction that are not committed yet."""
        session = self.db.session()
        changes = []
        for label, objects in (
            ("new", session.new),
            ("modified", [o for o in session.dirty if session.is_modified(o)]),
            ("deleted", session.deleted),
        ):
            by_class: dict[str, int] = {}
            for obj in objects:
                by_class[type(obj).__name__] = by_class.get(type(obj).__name__, 0) + 1
            changes += [f"{n} {label} {name}" for name, n in sorted(by_class.items())]
        if any(connection_has_writes(conn) for conn in session_connections(session)):
            changes.append("statements already sent to the database (flushed or executed)")
        return changes

    def release(self) -> str:
        """End a read-only transaction so its connection returns to the pool.

        Returns ``"idle"`` (no transaction), ``"released"`` or ``"kept"`` (uncommitted writes:
        kept, and reported once). ORM objects stay in the session and reload on next access.
        """
        if self.closed:
            return "idle"
        self.activate()
        if self._jupysql is not None:
            self._jupysql.release()
        session = self.db.session()
        if not session.in_transaction():
            self._reported_changes = ()
            return "idle"
        changes = tuple(self.pending_changes())
        if changes:
            if changes != self._reported_changes:
                self._reported_changes = changes
                print(
                    "Uncommitted changes kept open: " + "; ".join(changes) + ".\n"
                    "Run db.session.commit() to save them or db.session.rollback() to discard"
                    " them; until then the transaction holds a database connection and its locks.",
                    file=sys.stderr,
                )
            return "kept"
        session.rollback()
        self._reported_changes = ()
        return "released"

    # -- representation ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The default database's URL with the password masked (see :attr:`urls` for binds)."""
        if None in self._urls:
            return self._urls[None]
        return next(iter(self._urls.values()), "?")

    @property
    def urls(self) -> dict[str | None, str]:
        """Every database's URL, password masked, by bind key (``None``: the default one)."""
        return dict(self._urls)

    def _databases(self) -> str:
        """``sqlite:///app.db, warehouse=postgresql://u:***@h/db``: every database, masked."""
        if not self._urls:
            return "?"
        return ", ".join(url if key is None else f"{key}={url}" for key, url in self._urls.items())

    @property
    def mode(self) -> str:
        return "writable" if self.writable else "read-only"

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.mode
        return f"<Workbench {self.app.name!r} {self._databases()} {state}>"

    def _repr_html_(self) -> str:
        esc = html.escape
        databases = ", ".join(
            f"<code>{esc(url)}</code>" if key is None else f"{esc(key)}: <code>{esc(url)}</code>"
            for key, url in self._urls.items()
        ) or "?"
        head = (
            f"<b>Workbench</b> <code>{esc(self.app.name)}</code> &middot; "
            f"{databases} &middot; {esc('closed' if self.closed else self.mode)}"
        )
        if self.closed:
            return f"<div>{head}</div>"
        import pandas as pd

        try:
            tables = self.tables()
            tables["rows"] = [
                "not in the database" if count is pd.NA else f"{count:,}" for count in tables["rows"]
            ]
            body = tables.to_html(index=False)
        finally:
            self.release()
        return f"<div>{head}{body}</div>"

    # -- internals ---------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self.closed:
            raise ConnectionClosedError(
                "This Workbench is closed; call analysis.connect(...) to open a new one."
            )

    def _is_own_session(self, session: Session) -> bool:
        """Whether ``session`` is this Workbench's (not a job's session of the same app)."""
        own: Session | None = None
        if self._context.is_current():
            own = self.db.session()
        return session is own

    def _check_connection(self) -> None:
        for engine in self.db.engines.values():
            try:
                with engine.connect():
                    pass
            except ReadOnlyError:
                raise
            except sa.exc.DBAPIError as e:
                reason = _first_line(e.orig) if e.orig else _first_line(e)
                raise DatabaseUnavailableError(
                    f"Cannot connect to the database at"
                    f" {engine.url.render_as_string(hide_password=True)}: {reason}. Check the"
                    " app's database URL (DATABASE_URL) and that the server is running."
                ) from e


def _require(module: str, extra: str) -> None:
    """:class:`ImportError` saying which extra to install when ``module`` is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f"This needs {module}, which is not installed: pip install 'flask-data-workbench[{extra}]'."
        )


def _bind_order(item: tuple[str | None, t.Any]) -> tuple[bool, str]:
    """The default database (bind key ``None``) first, then the binds by name."""
    return (item[0] is not None, item[0] or "")


def _model_of(table: sa.Table, mappers: list[sa.orm.Mapper[t.Any]]) -> str:
    """The class mapped to ``table``: for a table shared by inheritance, the base class (the
    subclasses of single-table inheritance map the same table); ``""`` for none."""
    own = [m for m in mappers if m.local_table is table]
    top = [m for m in own if m.inherits is None or m.inherits.local_table is not table]
    return ", ".join(sorted(m.class_.__name__ for m in top))


def _column_names(table: sa.Table, mappers: list[sa.orm.Mapper[t.Any]]) -> str:
    """``id, email, _password (password)``: attribute names, with the column's name where the
    attribute is called otherwise; columns no class maps by their own name."""
    attributes: dict[sa.Column[t.Any], str] = {}
    for mapper in mappers:
        if table not in mapper.tables:
            continue
        for prop in mapper.column_attrs:
            for column in prop.columns:
                if isinstance(column, sa.Column) and column.table is table:
                    attributes.setdefault(column, prop.key)
    names = []
    for column in table.columns:
        key = attributes.get(column, column.name)
        names.append(key if key == column.name else f"{key} ({column.name})")
    return ", ".join(names)


def default_application_name(app: Flask, purpose: str = "notebook") -> str:
    """``analysis notebook my_app pid=123``: what ``pg_stat_activity`` shows for us."""
    return f"analysis {purpose} {app.name} pid={os.getpid()}"
