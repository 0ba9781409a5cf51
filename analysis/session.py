"""The Workbench: one app, one app context, one database session for a whole notebook.

Flask-SQLAlchemy scopes ``db.session`` by the identity of the current app context, so the
Workbench pushes ONE context and makes that same object current again whenever it has been
lost (some ipykernel versions do not carry context variables from cell to cell). Pushing a new
context per cell would silently create, and leak, a new session per cell.

Between cells, :meth:`Workbench.release` ends a transaction that only read, so its connection
goes back to the pool instead of sitting "idle in transaction" (PostgreSQL) or holding a read
snapshot (SQLite). Uncommitted writes are never discarded: they are kept and reported.
"""

from __future__ import annotations

import atexit
import contextvars
import html
import os
import sys
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask.globals import _cv_app
from flask.signals import appcontext_popped

from .errors import (
    AppNotFoundError,
    ConnectionClosedError,
    DatabaseUnavailableError,
    NotConnectedError,
    ReadOnlyError,
)
from .guards import EngineGuard, connection_has_writes
from .loading import AppSource, build_app
from .workbench_data import DataMethods

if t.TYPE_CHECKING:
    import pandas as pd
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.orm import Session, scoped_session

_current: Workbench | None = None


def connect(
    app: AppSource = None,
    *,
    config: t.Mapping[str, t.Any] | None = None,
    writable: bool = False,
) -> Workbench:
    """Build the Flask app and open a Workbench on its database.

    ``app`` is a Flask app, an app factory, or an import string in ``flask --app`` notation
    (``"my_app"``, ``"my_app:create_app"``, ``"my_app:create_app('production')"``); by default
    the ``FLASK_APP`` environment variable. ``config`` is passed to the factory. The connection
    is read-only unless ``writable=True``.

    Calling ``connect`` again closes the previous Workbench first. Cleanup also happens at
    interpreter exit (kernel shutdown or restart).

    >>> wb = analysis.connect("my_app:create_app")
    >>> wb.models["User"].query.count()
    """
    global _current
    if _current is not None:
        _current.close()
    flask_app = build_app(app, config)
    workbench = Workbench(flask_app, writable=writable)
    workbench.open()
    _current = workbench
    return workbench


def current() -> Workbench:
    """The Workbench opened by the last :func:`connect`."""
    if _current is None or _current.closed:
        raise NotConnectedError(
            "Not connected: call analysis.connect('my_app:create_app') (or %load_ext analysis"
            " in a notebook) first."
        )
    return _current


class Workbench(DataMethods):
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
        self.closed = False
        self._opened = False
        self._ctx = app.app_context()
        self._guards: list[EngineGuard] = []
        self._session_listeners: list[tuple[t.Any, str, t.Callable[..., t.Any]]] = []
        self._reported_changes: tuple[str, ...] = ()
        self._tokens: list[contextvars.Token[t.Any]] = []

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
        self._ctx.push()
        self._tokens = list(self._ctx._cv_tokens)
        self._opened = True
        atexit.register(self.close)
        try:
            for engine in self.db.engines.values():
                guard = EngineGuard(engine, writable=self.writable, application_name=self.application_name)
                guard.install()
                self._guards.append(guard)
            self._listen_session("before_flush", self._refuse_flush_when_read_only)
            self._check_connection()
            from . import fastpath

            for engine in self.db.engines.values():
                fastpath.warm_up(engine)
            if self.cell_hooks:
                from .ipython import register_cell_hooks

                register_cell_hooks(self)
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
        from .ipython import unregister_cell_hooks

        unregister_cell_hooks(self)
        # The context may have been pushed in another contextvars.Context (another cell, the
        # main thread at exit): make it current here, tear down, then restore.
        token = _cv_app.set(self._ctx)
        try:
            try:
                self.db.session.rollback()
            finally:
                try:
                    self.app.do_teardown_appcontext(None)
                finally:
                    self.db.session.remove()
                    for target, name, fn in self._session_listeners:
                        if sa.event.contains(target, name, fn):
                            sa.event.remove(target, name, fn)
                    for guard in self._guards:
                        guard.remove()
                        guard.engine.dispose()
        finally:
            _cv_app.reset(token)
            self._ctx._cv_tokens.clear()
            self._restore_previous_context()
            appcontext_popped.send(self.app, _async_wrapper=self.app.ensure_sync)

    def _restore_previous_context(self) -> None:
        """Make whatever context was current before :meth:`open` current again, here."""
        for token in reversed(self._tokens):
            try:
                _cv_app.reset(token)
            except (ValueError, RuntimeError):
                pass  # set in another contextvars.Context (another cell), or already reset
        if _cv_app.get(None) is self._ctx:
            previous = self._tokens[0].old_value if self._tokens else contextvars.Token.MISSING
            _cv_app.set(None if previous is contextvars.Token.MISSING else previous)  # type: ignore[arg-type]
        self._tokens.clear()

    def activate(self) -> None:
        """Make this Workbench's app context the current one again, if it was lost."""
        self._ensure_open()
        if _cv_app.get(None) is not self._ctx:
            _cv_app.set(self._ctx)

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc_info: t.Any) -> None:
        self.close()

    # -- what users touch --------------------------------------------------------------------

    @property
    def db(self) -> SQLAlchemy:
        return self.app.extensions["sqlalchemy"]

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
        classes = {mapper.class_.__name__: mapper.class_ for mapper in self.db.Model.registry.mappers}
        return dict(sorted(classes.items()))

    def __getitem__(self, name: str) -> type:
        try:
            return self.models[name]
        except KeyError:
            raise KeyError(f"No model named {name!r}; models: {', '.join(self.models)}") from None

    def _ipython_key_completions_(self) -> list[str]:
        return list(self.models)

    def tables(self) -> pd.DataFrame:
        """One row per table the app declares: table, model, rows, columns."""
        import pandas as pd

        self.activate()
        models_by_table = {
            mapper.local_table.name: mapper.class_.__name__
            for mapper in self.db.Model.registry.mappers
            if isinstance(mapper.local_table, sa.Table)
        }
        rows = []
        for bind_key, metadata in self.db.metadatas.items():
            existing = set(sa.inspect(self.db.engines[bind_key]).get_table_names())
            for name, table in sorted(metadata.tables.items()):
                count = (
                    self.session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                    if table.name in existing
                    else None
                )
                rows.append((name, models_by_table.get(table.name), count, ", ".join(table.columns.keys())))
        frame = pd.DataFrame(rows, columns=["table", "model", "rows", "columns"])
        frame["rows"] = frame["rows"].astype("Int64")
        return frame

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
        if any(connection_has_writes(conn) for conn in _session_connections(session)):
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
        """The database URL with the password masked."""
        return self.db.engine.url.render_as_string(hide_password=True) if self._opened else "?"

    @property
    def mode(self) -> str:
        return "writable" if self.writable else "read-only"

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.mode
        return f"<Workbench {self.app.name!r} {self.url} {state}>"

    def _repr_html_(self) -> str:
        esc = html.escape
        head = (
            f"<b>Workbench</b> <code>{esc(self.app.name)}</code> &middot; "
            f"<code>{esc(self.url)}</code> &middot; {esc('closed' if self.closed else self.mode)}"
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

    def _listen_session(self, name: str, fn: t.Callable[..., t.Any]) -> None:
        target = self.db.session
        sa.event.listen(target, name, fn)
        self._session_listeners.append((target, name, fn))

    def _refuse_flush_when_read_only(self, session: Session, flush_context: t.Any, instances: t.Any) -> None:
        if self.writable or session is not self._own_session():
            return
        if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
            raise ReadOnlyError(
                "This connection is read-only, so the changes were not written. To change"
                " data, connect with writable=True (analysis.connect(..., writable=True) or"
                " %connect --writable); db.session.rollback() discards the changes."
            )

    def _own_session(self) -> Session | None:
        token = _cv_app.set(self._ctx)
        try:
            return self.db.session()
        finally:
            _cv_app.reset(token)

    def _check_connection(self) -> None:
        for engine in self.db.engines.values():
            try:
                with engine.connect():
                    pass
            except ReadOnlyError:
                raise
            except sa.exc.DBAPIError as e:
                reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
                raise DatabaseUnavailableError(
                    f"Cannot connect to the database at"
                    f" {engine.url.render_as_string(hide_password=True)}: {reason}. Check the"
                    " app's database URL (DATABASE_URL) and that the server is running."
                ) from e


def default_application_name(app: Flask, purpose: str = "notebook") -> str:
    """``analysis notebook my_app pid=123``: what ``pg_stat_activity`` shows for us."""
    return f"analysis {purpose} {app.name} pid={os.getpid()}"


def _session_connections(session: Session) -> list[sa.Connection]:
    transaction = session.get_transaction()
    if transaction is None:
        return []
    # SessionTransaction keeps its connections in a private mapping; there is no public API.
    connections = getattr(transaction, "_connections", {})
    return [entry[0] for entry in connections.values() if isinstance(entry[0], sa.Connection)]
