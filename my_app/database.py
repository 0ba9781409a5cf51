"""Engine set-up that Flask-SQLAlchemy leaves to the app: SQLite pragmas, clear errors."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask

from .extensions import db


def init_app(app: Flask) -> None:
    """Bind ``db`` to ``app`` and give SQLite connections the pragmas a web app needs."""
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                timeout = int(app.config["SQLITE_BUSY_TIMEOUT_MS"])
                sa.event.listen(engine, "connect", _sqlite_pragmas(timeout))


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


def describe_url(engine: sa.Engine) -> str:
    """The engine's URL with the password masked, for messages."""
    return engine.url.render_as_string(hide_password=True)


def connection_error_message(engine: sa.Engine, error: BaseException) -> str:
    """One line saying which database could not be reached, why, and what to check."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    return (
        f"Cannot connect to the database at {describe_url(engine)}: {reason}."
        " Check DATABASE_URL (or MY_APP_SQLALCHEMY_DATABASE_URI) and that the server is running."
    )
