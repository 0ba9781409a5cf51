"""What runs on a Dask worker: one partition read through the toolkit's read path.

The worker reaches the database without credentials in the task (see
:class:`~analysis.partitions.plan.AppRecipe`): in the planner's own process it uses the
Workbench's engine; elsewhere it builds the app once per process from its import string (or an
engine from the URL in the named environment variable), guards its engines read-only, and
disposes them after each partition so that no connection outlives it.
"""

from __future__ import annotations

import os
import threading
import typing as t
import weakref

import sqlalchemy as sa

from ..connections import SNAPSHOT_KEY, EngineGuard, Snapshot
from ..errors import AnalysisError, PartitionError, QueryError, first_line
from ..locate import build_app
from ..read import adbc

if t.TYPE_CHECKING:
    import pandas as pd
    from flask import Flask

    from .plan import AppRecipe, PartitionSpec

_lock = threading.Lock()
_local_engines: weakref.WeakValueDictionary[str, sa.Engine] = weakref.WeakValueDictionary()
_apps: dict[tuple[str, str], Flask] = {}
_url_engines: dict[str, sa.Engine] = {}


def register_local_engine(token: str, engine: sa.Engine) -> None:
    """Let partitions read in this process use ``engine`` (the Workbench's) directly."""
    _local_engines[token] = engine


def local_engine(token: str) -> sa.Engine | None:
    return _local_engines.get(token)


def read_partition(spec: PartitionSpec) -> pd.DataFrame:
    """Read one partition as a DataFrame with the dtypes of ``frame()``; connections closed."""
    from ..read import read_frame
    from ..read.columns import assemble
    from ..read.plans import plan_columns
    from ..read.tables import empty_columns

    engine, own = _engine(spec.recipe)
    name = f"analysis dask-worker {spec.recipe.app_name} pid={os.getpid()}"
    session = sa.orm.Session(bind=engine)
    try:
        if spec.snapshot is not None:
            session.info[SNAPSHOT_KEY] = {engine: Snapshot(engine.dialect.name, spec.snapshot)}
        try:
            frame = read_frame(
                session, spec.statement(), progress=False, application_name=name + " (fast)",
                dtype_backend=t.cast(t.Any, spec.dtype_backend),
            )
        except QueryError as e:
            if spec.snapshot is not None and "snapshot" in str(e).lower():
                raise PartitionError(
                    f"Partition {spec.index} could not import the snapshot ({first_line(e)}): the"
                    " wb.snapshot() block had ended. Call compute() inside the block."
                ) from e
            raise
        # Columns typed from their values (unconstrained NUMERIC...) get the meta's dtype.
        plans = plan_columns(list(spec.names), list(spec.types), engine.dialect)
        meta = assemble(list(spec.names), empty_columns(plans), spec.dtype_backend)
        differing = {c: meta[c].dtype for c in meta.columns if frame[c].dtype != meta[c].dtype}
        return frame.astype(differing) if differing else frame
    finally:
        session.close()
        adbc.close_connections(engine)  # the Arrow driver's connection kept for the engine
        if own:
            engine.dispose()  # the connections of this partition, closed


def _engine(recipe: AppRecipe) -> tuple[sa.Engine, bool]:
    """The engine to read with, and whether it is this worker's own (to dispose after use)."""
    local = _local_engines.get(recipe.local_token) if recipe.local_token else None
    if local is not None:
        return local, False
    if recipe.url_env is not None:
        return _engine_from_environment(recipe.url_env), True
    app = _app(recipe)
    db: t.Any = app.extensions["sqlalchemy"]
    try:
        with app.app_context():
            return db.engines[recipe.bind_key], True
    except KeyError:
        raise PartitionError(
            f"The app built from {recipe.import_string!r} on this worker has no database bind"
            f" {recipe.bind_key!r}: do the workers run the same app code and configuration?"
        ) from None


def _app(recipe: AppRecipe) -> Flask:
    key = (str(recipe.import_string), repr(recipe.config))
    with _lock:
        app = _apps.get(key)
        if app is None:
            try:
                app = build_app(recipe.import_string, dict(recipe.config) if recipe.config is not None else None)
            except AnalysisError as e:
                raise PartitionError(
                    f"A Dask worker (pid {os.getpid()}) could not build the app from"
                    f" {recipe.import_string!r}: {first_line(e)}. The workers need the app's code"
                    " installed and its configuration (environment variables) set."
                ) from e
            if "sqlalchemy" not in app.extensions:
                raise PartitionError(f"The app built from {recipe.import_string!r} has no Flask-SQLAlchemy extension.")
            with app.app_context():
                for engine in app.extensions["sqlalchemy"].engines.values():
                    _guard(engine, recipe.app_name)
            _apps[key] = app
    return app


def _engine_from_environment(variable: str) -> sa.Engine:
    url = os.environ.get(variable)
    if not url:
        raise PartitionError(
            f"The environment variable {variable} is not set on this Dask worker (pid {os.getpid()}):"
            " set it to the database URL where the workers run."
        )
    with _lock:
        engine = _url_engines.get(url)
        if engine is None:
            try:
                engine = sa.create_engine(url)
            except Exception as e:
                raise PartitionError(f"{variable} on this Dask worker is not a database URL: {first_line(e)}.") from e
            _guard(engine, "url")
            _url_engines[url] = engine
    return engine


def _guard(engine: sa.Engine, app_name: str) -> None:
    """Read-only, named in ``pg_stat_activity``, whatever the notebook's mode."""
    name = f"analysis dask-worker {app_name} pid={os.getpid()}"
    EngineGuard(engine, writable=False, application_name=name[:63]).install()
