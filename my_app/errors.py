"""App-wide error handling: a database that is momentarily away is a 503, not a 500.

A transient database error (see :func:`my_app.db.is_transient`: a restart, a killed
connection, SQLite locked past its busy timeout, a deadlock) becomes
:class:`DatabaseUnavailable`, ``503 Service Unavailable`` with ``Retry-After``, logged once at
WARNING with the driver's first line (never the SQL parameters, which can hold a key's prefix).
Each blueprint answers it in its own format: JSON under ``/api/v1``, an HTML page elsewhere.
The request's transaction is rolled back first, so nothing of it is half-written. Any other
database error is a bug or a misconfiguration: it is re-raised, so Flask logs its traceback and
answers 500 as for any other exception.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import ServiceUnavailable

from .db import db, driver_message, is_transient


class DatabaseUnavailable(ServiceUnavailable):
    """The database could not serve the request now; the same request can be retried."""

    description = (
        "The database is unavailable for a moment; the request was not completed. Retry it after"
        " the number of seconds in the Retry-After header, with the same Idempotency-Key: a"
        " request that did get through is then answered with its original response, never"
        " inserted twice."
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(sa.exc.DBAPIError, database_error)
    app.register_error_handler(sa.exc.TimeoutError, database_error)  # no pooled connection in time
    app.register_error_handler(DatabaseUnavailable, unavailable_page)


def database_error(error: sa.exc.SQLAlchemyError) -> t.Any:
    """503 for a transient database error; anything else propagates as the bug it is."""
    if not is_transient(error):
        raise error
    seconds = int(current_app.config["RETRY_AFTER_SECONDS"])
    note = ""
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError as e:  # the same outage; the session is discarded after the request
        note = f" (the rollback failed too: {driver_message(e)})"
    current_app.logger.warning(
        "database unavailable: %s %s answered 503 with Retry-After %d: %s%s",
        request.method,
        request.path,
        seconds,
        driver_message(error),
        note,
    )
    # Through Flask's handlers for HTTP errors, so each blueprint answers in its own format.
    return current_app.handle_http_exception(DatabaseUnavailable(retry_after=seconds))


def unavailable_page(error: DatabaseUnavailable) -> tuple[str, int, list[tuple[str, str]]]:
    """The HTML 503 page, with the Retry-After header."""
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    seconds = error.retry_after if isinstance(error.retry_after, int) else None
    return render_template("errors/503.html", retry_after=seconds), 503, headers
