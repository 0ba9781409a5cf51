"""The exceptions users of the toolkit see.

Every message says what went wrong and what to do next. Driver errors are wrapped at the
boundary and kept as ``__cause__``.
"""

from __future__ import annotations


class AnalysisError(Exception):
    """Base class of every error this toolkit raises on purpose."""


class AppNotFoundError(AnalysisError):
    """No Flask app could be found or built from what was given."""


class AppFactoryError(AnalysisError):
    """The app factory itself raised while building the app."""


class NotConnectedError(AnalysisError):
    """A module-level shortcut was used before :func:`analysis.connect`."""


class ConnectionClosedError(AnalysisError):
    """The Workbench was closed; call :func:`analysis.connect` again."""


class DatabaseUnavailableError(AnalysisError):
    """The database server could not be reached."""


class ReadOnlyError(AnalysisError):
    """A write was attempted on a read-only connection."""


class QueryError(AnalysisError):
    """A query could not be understood or the database rejected it."""


class ExportError(AnalysisError):
    """An export could not be written; the target file is left as it was."""


class ReportNotFoundError(AnalysisError):
    """No report is registered under the given name."""


class ParameterError(AnalysisError, ValueError):
    """A report's or query's parameter is missing, unknown or not of the expected type."""


class InsertError(AnalysisError):
    """A DataFrame could not be inserted; nothing was written."""


class JobError(AnalysisError):
    """A job could not be found or set up."""
