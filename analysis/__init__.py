"""Get a Flask + Flask-SQLAlchemy app's data into notebooks, DataFrames, files and jobs.

>>> import analysis
>>> wb = analysis.connect("my_app:create_app")      # read-only unless writable=True
>>> wb.tables()                                     # what is there, at a glance
"""

from __future__ import annotations

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
    QueryError,
    ReadOnlyError,
    ReportNotFoundError,
)
from .ipython import load_ipython_extension, unload_ipython_extension
from .session import Workbench, connect, current
from .inserts import insert_frame
from .jobs import job

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
    "QueryError",
    "ReadOnlyError",
    "ReportNotFoundError",
    "Workbench",
    "connect",
    "current",
    "insert_frame",
    "job",
    "load_ipython_extension",
    "unload_ipython_extension",
]
