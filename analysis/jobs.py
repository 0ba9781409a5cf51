"""Scheduled jobs done safely: :func:`job`, a context manager and decorator for scripts.

A cron job that reaches a Flask app's database usually builds the app, pushes a context and
forgets the rest: an exception leaves the transaction open, the session is never removed, the
engine's connections linger. ``job`` owns all of it::

    with analysis.job("my_app:create_app") as wb:
        wb.session.execute(...)          # one transaction, committed at the end

    @analysis.job("my_app:create_app")
    def daily_summary(wb, day):          # the Workbench comes first
        ...

    if __name__ == "__main__":
        sys.exit(analysis.jobs.run(daily_summary, day))   # exit status 0 or 1, for cron

On success the session is committed; on any exception it is rolled back and the exception
propagates. Either way the session is removed, the app context popped and the engines disposed,
so no connection outlives the job. The connections are named ``analysis job <app> pid=<pid>``
in PostgreSQL's ``pg_stat_activity``. Progress is logged on the ``analysis.jobs`` logger.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
import typing as t

from .connections import connection_lost_error, is_connection_lost
from .errors import AnalysisError, DatabaseUnavailableError, JobError, first_line
from .locate import AppSource, build_app, import_string_for
from .workbench import Workbench, current_or_none, default_application_name

logger = logging.getLogger("analysis.jobs")

#: The exit status for "the database was unavailable; try again later" (sysexits.h EX_TEMPFAIL).
EX_TEMPFAIL = 75

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def job(
    app: AppSource = None,
    *,
    config: t.Mapping[str, t.Any] | None = None,
    writable: bool = True,
    name: str | None = None,
) -> Job:
    """Run code against a Flask app's database as one job: one transaction, full cleanup.

    ``app`` is an app factory or an import string in ``flask --app`` notation (by default the
    ``FLASK_APP`` environment variable); the app is built fresh for every run, so the job has its
    own engine and never touches a notebook's Workbench. ``config`` is passed to the factory.
    Jobs are writable unless ``writable=False``. ``name`` labels the log lines (by default the
    decorated function's name, or the script's).

    Use it as a context manager (``with analysis.job(...) as wb:``) or as a decorator, in which
    case the decorated function receives the Workbench as its first argument.
    """
    return Job(app, config=config, writable=writable, name=name)


class Job:
    """One job definition; each ``with`` block or decorated call is one run."""

    def __init__(
        self,
        app: AppSource,
        *,
        config: t.Mapping[str, t.Any] | None = None,
        writable: bool = True,
        name: str | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.writable = writable
        self.name = name
        self._run: _Run | None = None

    def __repr__(self) -> str:
        return f"<Job {self.name or '?'} app={self.app!r} {'writable' if self.writable else 'read-only'}>"

    # -- context manager ----------------------------------------------------------------------

    def __enter__(self) -> Workbench:
        if self._run is not None:
            raise JobError(
                "This job is already running; nest a new analysis.job(...) instead of"
                " re-entering the same one."
            )
        run = _Run(self, self.name or _script_name())
        workbench = run.start()  # raises (and leaves nothing open) if the job cannot start
        self._run = run
        return workbench

    def __exit__(self, exc_type: t.Any, exc: BaseException | None, tb: t.Any) -> None:
        run, self._run = self._run, None
        assert run is not None
        run.finish(exc)
        if exc is not None and not isinstance(exc, AnalysisError) and is_connection_lost(exc):
            # An outage, not a bug in the job: say so in one line, and let cron retry.
            raise connection_lost_error(exc, consequence="The job's transaction was rolled back") from exc

    # -- decorator ----------------------------------------------------------------------------

    def __call__(self, func: F) -> F:
        if not callable(func):
            raise TypeError(f"@analysis.job(...) decorates a function, not {func!r}.")
        name = self.name or func.__name__

        @functools.wraps(func)
        def run_job(*args: t.Any, **kwargs: t.Any) -> t.Any:
            # A fresh run per call: the decorated function may be called again, or concurrently.
            with Job(self.app, config=self.config, writable=self.writable, name=name) as workbench:
                return func(workbench, *args, **kwargs)

        run_job.job = self  # type: ignore[attr-defined]
        return t.cast(F, run_job)


class _Run:
    """The lifecycle of one run: build, open, commit or roll back, close, log."""

    def __init__(self, job: Job, name: str) -> None:
        self.job = job
        self.name = name
        self.workbench: Workbench | None = None
        self.started = 0.0
        self.ready = 0.0

    def start(self) -> Workbench:
        self.started = time.perf_counter()
        logger.info("job %s: starting", self.name)
        try:
            flask_app = build_app(self.job.app, self.job.config)
            _refuse_the_notebooks_app(flask_app)
            workbench = Workbench(
                flask_app,
                writable=self.job.writable,
                application_name=default_application_name(flask_app, purpose="job"),
                cell_hooks=False,
            )
            # How Dask's workers would build the same app (wb.dask() inside a job).
            workbench.import_string = import_string_for(self.job.app)
            workbench.app_config = dict(self.job.config) if self.job.config is not None else None
            workbench.open()  # closes itself if it fails halfway
        except BaseException as e:
            logger.error(
                "job %s: could not start after %.2f s: %s", self.name, self._elapsed(), _describe(e)
            )
            raise
        self.workbench = workbench
        self.ready = time.perf_counter()
        logger.info(
            "job %s: connected to %s (%s) in %.2f s",
            self.name, workbench.url, workbench.mode, self.ready - self.started,
        )
        return workbench

    def finish(self, exc: BaseException | None) -> None:
        workbench = self.workbench
        assert workbench is not None
        ran = time.perf_counter() - self.ready
        try:
            if exc is None:
                try:
                    workbench.session.commit()
                except BaseException as e:
                    logger.error(
                        "job %s: commit failed after %.2f s, rolled back: %s",
                        self.name, self._elapsed(), _describe(e),
                    )
                    raise
                logger.info(
                    "job %s: committed; ran %.2f s, %.2f s in all", self.name, ran, self._elapsed()
                )
            else:
                logger.error(
                    "job %s: failed after %.2f s, rolling back: %s",
                    self.name, self._elapsed(), _describe(exc),
                )
                try:
                    workbench.session.rollback()
                except Exception as e:
                    # The job's own error is the one to see; the connection is discarded below.
                    logger.warning("job %s: the rollback failed too: %s", self.name, _describe(e))
        finally:
            workbench.close()  # rolls back anything left, removes the session, disposes engines

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started


def _refuse_the_notebooks_app(app: t.Any) -> None:
    holder = current_or_none()
    if holder is not None and holder.app is app:
        raise JobError(
            f"The app {app.name!r} is the one the notebook's Workbench holds, and a job closes"
            " its app's engine when it ends. Pass the factory instead, as in"
            " analysis.job('my_app:create_app'), so the job builds its own app."
        )


def run(func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> int:
    """Call a job (usually a function decorated with :func:`job`) and return an exit status.

    For ``if __name__ == "__main__": sys.exit(analysis.jobs.run(my_job))``: logging goes to
    stderr if the program has not configured it, a failure is logged with its traceback and
    gives 1 (130 for Ctrl-C; 75, EX_TEMPFAIL, when the connection was lost midway, so a scheduler
    can retry; a database that cannot be reached at all gives 1, as a wrong URL would), success
    gives 0, so cron and schedulers see what happened. The
    toolkit's own errors (:class:`~analysis.AnalysisError`) are logged as their message, which
    says what to do; anything else with its traceback.
    """
    configure_logging()
    try:
        func(*args, **kwargs)
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    except DatabaseUnavailableError as e:
        logger.error("job failed: %s", e)
        return EX_TEMPFAIL if e.lost else 1
    except AnalysisError as e:
        # The toolkit's own errors say what went wrong and what to do; a traceback adds noise.
        logger.error("job failed: %s", e)
        return 1
    except Exception:
        logger.exception("job failed")
        return 1
    return 0


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr with timestamps, at ``level``, unless the program configured logging."""
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _script_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return spec.name
    path = getattr(main, "__file__", None)
    return os.path.basename(path).removesuffix(".py") if path else "interactive"


def _describe(error: BaseException) -> str:
    text = first_line(error)
    return f"{type(error).__name__}: {text}" if str(error).strip() else type(error).__name__
