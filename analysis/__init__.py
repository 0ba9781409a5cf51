"""Get a Flask + Flask-SQLAlchemy app's data into notebooks, DataFrames, files and jobs.

>>> import analysis
>>> wb = analysis.connect("my_app:create_app")      # read-only unless writable=True
>>> wb.tables()                                     # what is there, at a glance
"""

from __future__ import annotations

import typing as t

from .errors import (
    AnalysisError,
    AppFactoryError,
    AppNotFoundError,
    ConnectionClosedError,
    DatabaseUnavailableError,
    ExportError,
    InsertError,
    JobError,
    NotConnectedError,
    ParameterError,
    QueryError,
    ReadOnlyError,
    ReportNotFoundError,
)
if t.TYPE_CHECKING:
    import pandas as pd

from .ipython import load_ipython_extension, unload_ipython_extension
from .session import Workbench, connect, current
from .export import ExportResult
from .reports import report
from .inserts import insert_frame
from .jobs import job
from . import frames as _frames  # noqa: F401, E402  loaded first: the shortcut `frames` below takes its name

__all__ = [
    "AnalysisError",
    "AppFactoryError",
    "AppNotFoundError",
    "ConnectionClosedError",
    "DatabaseUnavailableError",
    "ExportError",
    "InsertError",
    "JobError",
    "NotConnectedError",
    "ParameterError",
    "QueryError",
    "ReadOnlyError",
    "ReportNotFoundError",
    "Workbench",
    "ExportResult",
    "connect",
    "current",
    "export_csv",
    "export_parquet",
    "frame",
    "frames",
    "insert_frame",
    "job",
    "report",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def frame(query: t.Any, **options: t.Any) -> pd.DataFrame:
    """:meth:`Workbench.frame` on the current Workbench: ``analysis.frame(User.query)``."""
    return current().frame(query, **options)


def frames(query: t.Any, **options: t.Any) -> t.Iterator[pd.DataFrame]:
    """:meth:`Workbench.frames` on the current Workbench (``from analysis.frames import ...``
    still reaches the module)."""
    return current().frames(query, **options)


def export_csv(query: t.Any, path: t.Any, **options: t.Any) -> ExportResult:
    """:meth:`Workbench.export_csv` on the current Workbench: ``analysis.export_csv(User, "u.csv")``."""
    return current().export_csv(query, path, **options)


def export_parquet(query: t.Any, path: t.Any, **options: t.Any) -> ExportResult:
    """:meth:`Workbench.export_parquet` on the current Workbench."""
    return current().export_parquet(query, path, **options)
