"""Get a Flask + Flask-SQLAlchemy app's data into notebooks, DataFrames, files and jobs.

>>> import analysis
>>> wb = analysis.connect("my_app:create_app")      # read-only unless writable=True
>>> wb.tables()                                     # what is there, at a glance

The functions ``frame``, ``frames``, ``arrow``, ``polars``, ``export_csv``, ``export_parquet`` and ``insert_frame``
here are the methods of the current Workbench (the one :func:`connect` opened last).
"""

from __future__ import annotations

import os
import typing as t

from .versions import check_installed as _check_installed

# First: an unsupported Flask-SQLAlchemy (or Flask, SQLAlchemy...) is one clear error, not a
# failure deep inside an import below.
_check_installed()

from . import jobs as jobs
from .errors import AnalysisError as AnalysisError
from .errors import AppFactoryError as AppFactoryError
from .errors import AppNotFoundError as AppNotFoundError
from .errors import ConnectionClosedError as ConnectionClosedError
from .errors import DatabaseUnavailableError as DatabaseUnavailableError
from .errors import ExportError as ExportError
from .errors import InsertError as InsertError
from .errors import JobError as JobError
from .errors import NotConnectedError as NotConnectedError
from .errors import ParameterError as ParameterError
from .errors import PartitionError as PartitionError
from .errors import QueryError as QueryError
from .errors import ReadOnlyError as ReadOnlyError
from .errors import ReportNotFoundError as ReportNotFoundError
from .errors import SnapshotError as SnapshotError
from .errors import UncommittedChangesError as UncommittedChangesError
from .errors import UnsupportedVersionError as UnsupportedVersionError
from .export import ExportResult as ExportResult
from .ipython import load_ipython_extension as load_ipython_extension
from .ipython import unload_ipython_extension as unload_ipython_extension
from .jobs import job as job
from .reports import report as report
from .workbench import Workbench as Workbench
from .workbench import connect as connect
from .workbench import current as current

if t.TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    from .insert import OnConflict
    from .read import FrameIterator

__all__ = [
    "AnalysisError",
    "AppFactoryError",
    "AppNotFoundError",
    "ConnectionClosedError",
    "DatabaseUnavailableError",
    "ExportError",
    "ExportResult",
    "InsertError",
    "JobError",
    "NotConnectedError",
    "ParameterError",
    "PartitionError",
    "QueryError",
    "ReadOnlyError",
    "ReportNotFoundError",
    "SnapshotError",
    "UncommittedChangesError",
    "UnsupportedVersionError",
    "Workbench",
    "arrow",
    "connect",
    "current",
    "export_csv",
    "export_parquet",
    "frame",
    "frames",
    "insert_frame",
    "job",
    "jobs",
    "load_ipython_extension",
    "polars",
    "report",
    "unload_ipython_extension",
]


def frame(query: t.Any, **options: t.Any) -> pd.DataFrame:
    """:meth:`Workbench.frame` on the current Workbench: ``analysis.frame(User.query)``."""
    return current().frame(query, **options)


def arrow(query: t.Any, **options: t.Any) -> pa.Table:
    """:meth:`Workbench.arrow` on the current Workbench."""
    return current().arrow(query, **options)


def polars(query: t.Any, **options: t.Any) -> pl.DataFrame:
    """:meth:`Workbench.polars` on the current Workbench."""
    return current().polars(query, **options)


def frames(query: t.Any, **options: t.Any) -> FrameIterator:
    """:meth:`Workbench.frames` on the current Workbench."""
    return current().frames(query, **options)


def export_csv(query: t.Any, path: str | os.PathLike[str], **options: t.Any) -> ExportResult:
    """:meth:`Workbench.export_csv` on the current Workbench: ``analysis.export_csv(User, "u.csv")``."""
    return current().export_csv(query, path, **options)


def export_parquet(query: t.Any, path: str | os.PathLike[str], **options: t.Any) -> ExportResult:
    """:meth:`Workbench.export_parquet` on the current Workbench."""
    return current().export_parquet(query, path, **options)


def insert_frame(
    model: t.Any, df: pd.DataFrame, *, chunksize: int = 10_000, on_conflict: OnConflict = "error"
) -> int:
    """:meth:`Workbench.insert_frame` on the current Workbench: ``analysis.insert_frame("Data", df)``."""
    return current().insert_frame(model, df, chunksize=chunksize, on_conflict=on_conflict)
