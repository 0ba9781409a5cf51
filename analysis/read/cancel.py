"""Blocking driver calls that Ctrl-C (the kernel's stop button) cancels in the database.

A driver blocked in C (libpq waiting for ``pg_sleep``, connectorx reading MariaDB) does not
return to Python, so Python's SIGINT handler never runs and the cell stays busy until the
query ends. ADBC's own handler does cancel the statement, but swallows the KeyboardInterrupt:
the cancellation then looks like a driver error, and a fallback route would run the query
again.

:func:`interruptible` runs the call in a worker thread and waits in short waits that a signal
interrupts. On KeyboardInterrupt it asks the database to stop the statement (``cancel``: a
PostgreSQL cancel request, MariaDB ``KILL QUERY``), repeating the request until the worker
comes back (a cancel that arrives before the statement reached the server does nothing),
and re-raises the KeyboardInterrupt. If the worker does not come back within
:data:`CANCEL_GRACE` seconds, or a second Ctrl-C says not to wait, the connection is given up
(``abandon``), never reused.

Outside the main thread there are no signals to wait for: the call runs directly.
"""

from __future__ import annotations

import contextvars
import threading
import time
import typing as t

if t.TYPE_CHECKING:
    import sqlalchemy as sa

T = t.TypeVar("T")

#: Seconds to wait for the driver to come back after a cancel request.
CANCEL_GRACE = 5.0
#: Seconds between two cancel requests for the same statement.
CANCEL_REPEAT = 0.25
_WAIT = 0.05


def interruptible(
    run: t.Callable[[], T],
    cancel: t.Callable[[], None],
    *,
    abandon: t.Callable[[], None] = lambda: None,
) -> T:
    """``run()``; Ctrl-C meanwhile cancels it with ``cancel()`` and raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        return run()
    done = threading.Event()
    outcome: dict[str, t.Any] = {}

    def work() -> None:
        try:
            outcome["value"] = run()
        except BaseException as e:  # handed to the waiting thread
            outcome["error"] = e
        finally:
            done.set()

    # The worker sees this thread's context variables (the app context, for SQLAlchemy events).
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(work,), name="analysis-read", daemon=True)
    worker.start()
    try:
        while not done.wait(_WAIT):
            pass
    except KeyboardInterrupt:
        _cancel_until_done(cancel, done, abandon)
        raise KeyboardInterrupt() from None
    if "error" in outcome:
        raise outcome["error"]
    return t.cast(T, outcome["value"])


def _cancel_until_done(cancel: t.Callable[[], None], done: threading.Event, abandon: t.Callable[[], None]) -> None:
    deadline = time.monotonic() + CANCEL_GRACE
    try:
        while not done.is_set() and time.monotonic() < deadline:
            try:
                cancel()
            except Exception:  # noqa: S110 - the server may already have finished; wait and see
                pass
            done.wait(CANCEL_REPEAT)
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting
    if not done.is_set():
        abandon()


def connection_canceller(conn: sa.Connection) -> t.Callable[[], None]:
    """How to stop the statement running on ``conn`` (a SQLAlchemy connection) from another
    thread: SQLite ``interrupt()``, psycopg's cancel request, MariaDB/MySQL ``KILL QUERY`` on a
    second connection. Other drivers: nothing (the KeyboardInterrupt still ends the wait)."""
    dbapi: t.Any = conn.connection.dbapi_connection
    name = conn.dialect.name
    if dbapi is None:
        return lambda: None
    if name == "sqlite" and hasattr(dbapi, "interrupt"):
        return t.cast("t.Callable[[], None]", dbapi.interrupt)
    if name == "postgresql" and hasattr(dbapi, "cancel_safe"):
        return t.cast("t.Callable[[], None]", dbapi.cancel_safe)
    if name == "postgresql" and hasattr(dbapi, "cancel"):
        return t.cast("t.Callable[[], None]", dbapi.cancel)
    if name in ("mysql", "mariadb") and hasattr(dbapi, "thread_id"):
        thread_id = int(dbapi.thread_id())
        engine = conn.engine

        def kill() -> None:
            # A second connection from the pool; KILL QUERY ends the statement, not the session.
            other = engine.raw_connection()
            try:
                cursor = other.cursor()
                try:
                    cursor.execute(f"KILL QUERY {thread_id}")
                finally:
                    cursor.close()
            finally:
                other.close()

        return kill
    return lambda: None
