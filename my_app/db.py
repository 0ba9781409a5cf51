"""The database, as flaskr's ``db.py`` keeps it: the SQLAlchemy object, engine set-up,
``init-db``/``drop-db``, and what database errors mean.

``db`` is created unbound and bound to each app by :func:`init_app`, called from
:func:`my_app.create_app`. SQLite connections get the pragmas a web app needs. Errors are
sorted into two kinds: :func:`is_transient` ones (the server restarts, a connection is killed,
a lock is held past the busy timeout) are worth retrying and become ``503 Service Unavailable``
(see :mod:`my_app.errors`); every other database error is a bug or a misconfiguration and
stays one.
"""

from __future__ import annotations

import functools
import typing as t

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


class Base(DeclarativeBase):
    """Declarative base for every model of the app."""


db = SQLAlchemy(model_class=Base)

if t.TYPE_CHECKING:
    # ``db.Model`` is built at run time, so type checkers cannot use it as a base class (mypy
    # issue 8603); they check the models against the declarative base it is built from.
    Model = Base
else:
    Model = db.Model


def init_app(app: Flask) -> None:
    """Bind ``db`` to ``app``, give SQLite connections their pragmas, add the commands."""
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                timeout = int(app.config["SQLITE_BUSY_TIMEOUT_MS"])
                sa.event.listen(engine, "connect", _sqlite_pragmas(timeout))
    app.cli.add_command(init_db_command)
    app.cli.add_command(drop_db_command)


def _sqlite_pragmas(busy_timeout_ms: int) -> t.Callable[..., None]:
    """WAL lets readers (notebooks) and the writer (the app) work at once; foreign keys are
    off in SQLite unless asked for; the busy timeout waits for a lock instead of failing."""

    def on_connect(dbapi_connection: t.Any, connection_record: t.Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
        finally:
            cursor.close()

    return on_connect


def import_models() -> None:
    """Register every table on ``db.metadata`` (the models register themselves on import)."""
    from . import models  # noqa: F401


def describe_url(engine: sa.Engine) -> str:
    """The engine's URL with the password masked, for messages."""
    return engine.url.render_as_string(hide_password=True)


def driver_message(error: BaseException) -> str:
    """The first line of what the driver said, without SQLAlchemy's SQL and parameters.

    The parameters can hold a key's prefix or a client's data, so logs and messages use this.
    """
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def connection_error_message(engine: sa.Engine, error: BaseException) -> str:
    """One line saying which database could not be reached, why, and what to check."""
    return (
        f"Cannot connect to the database at {describe_url(engine)}: {driver_message(error)}."
        " Check DATABASE_URL (or MY_APP_SQLALCHEMY_DATABASE_URI) and that the server is running."
    )


# Errors that say "not now" rather than "never": retrying the same request later can succeed.
_PG_TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "53300",  # too_many_connections
        "55P03",  # lock_not_available (lock_timeout)
        "57P01",  # admin_shutdown: "terminating connection due to administrator command"
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: "the database system is shutting down / starting up"
    }
)
_MYSQL_TRANSIENT_CODES = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1205,  # lock wait timeout exceeded
        1213,  # deadlock found when trying to get lock
        1927,  # connection was killed
        2002,  # can't connect through the socket
        2003,  # can't connect to the server
        2006,  # server has gone away
        2013,  # lost connection during query
        2055,  # lost connection at a system error
        4031,  # disconnected by the server (idle timeout)
    }
)
_SQLITE_TRANSIENT_MESSAGES = ("database is locked", "database table is locked")


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` means the database is momentarily unavailable, not that the request
    or the code is wrong: a refused or lost connection, a server shutting down or starting up,
    a killed connection, SQLite busy or locked past its timeout, a deadlock, a serialization
    failure, no free pooled connection in time. Such a request can be retried as it is.
    """
    if isinstance(error, (sa.exc.TimeoutError, sa.exc.DisconnectionError)):
        return True
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", ...)  # psycopg: None when no server said anything
    if sqlstate is not ...:
        if sqlstate is None:
            # psycopg raises OperationalError without a SQLSTATE only for the connection itself:
            # refused, timed out, closed by the server.
            return isinstance(error, sa.exc.OperationalError)
        return sqlstate.startswith("08") or sqlstate in _PG_TRANSIENT_SQLSTATES
    errorname = getattr(orig, "sqlite_errorname", None)  # sqlite3 on Python 3.11+
    if isinstance(errorname, str):
        return errorname.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # PyMySQL: (code, message)
        return args[0] in _MYSQL_TRANSIENT_CODES
    return isinstance(error, sa.exc.OperationalError) and str(orig).startswith(_SQLITE_TRANSIENT_MESSAGES)


def database_errors_as_messages(f: F) -> F:
    """Turn "server unreachable" and other driver errors into one line and exit status 1."""

    @functools.wraps(f)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return f(*args, **kwargs)
        except sa.exc.OperationalError as e:
            raise click.ClickException(connection_error_message(db.engine, e)) from e
        except sa.exc.DBAPIError as e:
            raise click.ClickException(f"The database refused the operation: {driver_message(e)}") from e

    return t.cast(F, wrapper)


@click.command("init-db")
@with_appcontext
@database_errors_as_messages
def init_db_command() -> None:
    """Create the tables that do not exist yet (safe to run twice)."""
    import_models()
    db.create_all()
    click.echo(f"Initialised the database ({len(db.metadata.tables)} tables).")


@click.command("drop-db")
@with_appcontext
@click.confirmation_option(prompt="This deletes every table and all data. Continue?")
@database_errors_as_messages
def drop_db_command() -> None:
    """Drop every table the app declares."""
    import_models()
    db.drop_all()
    click.echo("Dropped all tables.")
