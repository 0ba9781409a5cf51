"""The exceptions of the toolkit, and the one helper that makes an error a one-line message.

Every message a user sees says what went wrong and what to do next. Driver errors are wrapped
at the boundary and kept as ``__cause__``.

The hierarchy::

    AnalysisError                   base of every error raised on purpose (public)
    ├── AppNotFoundError            no Flask app could be found or built from what was given
    ├── AppFactoryError             the app factory itself raised
    ├── NotConnectedError           a shortcut was used before analysis.connect()
    ├── ConnectionClosedError       the Workbench was closed
    ├── DatabaseUnavailableError    the database server could not be reached
    ├── UncommittedChangesError     a reconnect or mode switch would drop uncommitted writes
    ├── UnsupportedVersionError     import analysis under a Flask/SQLAlchemy/... it does not
    │   (ImportError)               support: names the version found and the one needed
    ├── ReadOnlyError               a write on a read-only connection
    ├── QueryError                  a query could not be understood, or the database rejected it
    ├── ExportError                 an export could not be written; the target is untouched
    ├── ReportNotFoundError         no report under that name
    ├── ParameterError (ValueError) a report's or query's parameter is missing or of the wrong type
    ├── InsertError                 a DataFrame could not be inserted; nothing was written
    ├── JobError                    a job could not be found or set up
    ├── SnapshotError               wb.snapshot() cannot start, or cannot be shared as asked
    └── PartitionError              wb.dask() cannot split or rebuild a read on the workers

    RouteUnavailable                internal: a read route cannot serve this query; the route
    │                               machine (analysis.read.routes) tries the next one
    ├── TooLarge                    more rows than the small-result route serves: take the next one
    ├── TypeMismatch                a batch held values of another type than the driver inferred
    │                               from the first one: read again, casting every column in SQL
    ├── Unfaithful                  a vectorised conversion would not give what SQLAlchemy
    │                               gives (a TypeDecorator of its own): read through SQLAlchemy
    └── DriverFailed                the Arrow driver failed for another reason (the query itself
                                    may be wrong): go straight to SQLAlchemy, which reports it
    HelperError                     internal: SQLite's reader process could not run a statement
    BadValue                        internal: one value of a DataFrame does not fit its column;
                                    becomes an InsertError naming the row

The internal ones never reach users: each is caught where the fallback it asks for is taken.
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
    """The database server could not be reached, or the connection was lost mid-work.

    ``lost`` is true when a connection that worked went away (a server restart, a killed
    connection): the same work can simply be run again once the database is back.
    """

    def __init__(self, message: str, *, lost: bool = False) -> None:
        super().__init__(message)
        self.lost = lost


class UncommittedChangesError(AnalysisError):
    """Reconnecting or switching mode would drop the session's uncommitted writes."""


class UnsupportedVersionError(AnalysisError, ImportError):
    """A library the toolkit needs is installed in a version it does not support."""


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


class SnapshotError(AnalysisError):
    """A snapshot could not be taken, or cannot be shared the way a read needs."""


class PartitionError(AnalysisError):
    """A partitioned read cannot be planned, or its workers could not rebuild the app."""


# -- internal: fallbacks between routes, never shown to users -----------------------------------


class RouteUnavailable(Exception):
    """A read route cannot serve this query; read it by the next route instead."""


class TooLarge(RouteUnavailable):
    """The result has more rows than the small-result route serves; read it by the next route."""


class TypeMismatch(RouteUnavailable):
    """A batch held values of another type than the driver inferred from the first batch."""


class Unfaithful(RouteUnavailable):
    """A vectorised conversion would not give what SQLAlchemy gives; use another route."""


class DriverFailed(RouteUnavailable):
    """The Arrow-native driver failed for another reason than a column's type (the query itself
    may be wrong): go straight to the SQLAlchemy route, which reports such errors well."""


class HelperError(Exception):
    """SQLite's reader process could not run the statement (or died); the message is the driver's."""


class BadValue(Exception):
    """A value in a DataFrame column does not fit the model's column."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def first_line(error: BaseException | str, *, sentence: bool = False) -> str:
    """The first non-empty line of an error's message, without a closing full stop.

    Database errors carry the SQL and hints on later lines; a one-line message keeps what the
    user needs. An exception without a message is named by its type. Callers that put the
    line inside a sentence write its punctuation; ``sentence=True`` returns it as a sentence
    of its own, ending in ``.`` (or the ``?``/``!`` it had).

    >>> first_line(ValueError("no such table: users\\n[SQL: SELECT ...]"))
    'no such table: users'
    """
    text = error if isinstance(error, str) else str(error)
    line = next((part.strip() for part in text.strip().splitlines() if part.strip()), "")
    if not line and not isinstance(error, str):
        line = type(error).__name__
    line = line.rstrip(".")
    if sentence and line and not line.endswith(("?", "!")):
        line += "."
    return line
