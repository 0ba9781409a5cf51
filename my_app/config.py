"""Configuration: defaults, then overrides, in the order Flask recommends.

Order (later wins):

1. :data:`DEFAULTS` below; the embedded SQLite default needs nothing else.
2. ``instance/config.py`` in the app's instance folder, if it exists.
3. ``MY_APP_*`` environment variables (``MY_APP_SQLALCHEMY_DATABASE_URI=...``), read with
   :meth:`flask.Config.from_prefixed_env`, and ``DATABASE_URL``, the name hosting platforms use.
4. The mapping passed to ``create_app(config)``, used by tests.

Database URLs are normalised so that what people paste works: ``postgres://`` becomes
``postgresql+psycopg://`` (psycopg 3), ``mysql://`` and ``mariadb://`` use PyMySQL.
"""

from __future__ import annotations

import os
import typing as t

import click
import sqlalchemy as sa
from flask import Flask

DEFAULTS: dict[str, t.Any] = {
    "SECRET_KEY": "dev",
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SQLITE_BUSY_TIMEOUT_MS": 5000,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # The admin pages answer only when this is set (HTTP Basic, user "admin").
    "ADMIN_PASSWORD": None,
    # Where reporting tools (`flask report`, analysis) find the app's reports: see reports.py.
    "ANALYSIS_REPORTS": "my_app.reports",
    # How long the ingest endpoint remembers an Idempotency-Key (a retry after that inserts).
    "API_IDEMPOTENCY_TTL_SECONDS": 24 * 60 * 60,
    # Expired Idempotency-Keys are deleted at most this often per server process, at most
    # API_IDEMPOTENCY_PURGE_BATCH at a time (sooner again while a backlog is left).
    "API_IDEMPOTENCY_PURGE_INTERVAL_SECONDS": 60,
    "API_IDEMPOTENCY_PURGE_BATCH": 1000,
    # An API key's last_used_at is written at most this often (it is bookkeeping, not an audit).
    "API_KEY_LAST_USED_INTERVAL_SECONDS": 60,
    # What a 503 (database momentarily unavailable) tells clients to wait before retrying.
    "RETRY_AFTER_SECONDS": 2,
}

#: Drivers used when a URL names a backend but not a driver.
DEFAULT_DRIVERS = {
    "postgresql": "psycopg",
    "mysql": "pymysql",
    "mariadb": "pymysql",
}

_SCHEME_ALIASES = {"postgres": "postgresql"}


class ConfigError(click.ClickException):
    """The app's configuration cannot work.

    A :class:`click.ClickException`, so that ``flask --app my_app ...`` prints one line
    ("Error: ...") instead of a traceback; elsewhere it is an ordinary exception.
    """


def load_config(app: Flask, overrides: t.Mapping[str, t.Any] | None) -> None:
    """Fill ``app.config`` from defaults, the instance file, the environment and ``overrides``."""
    app.config.from_mapping(DEFAULTS)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(DEFAULTS["SQLALCHEMY_ENGINE_OPTIONS"])
    app.config["SQLALCHEMY_DATABASE_URI"] = default_database_uri(app)

    if overrides is None:
        app.config.from_pyfile("config.py", silent=True)
        if os.environ.get("DATABASE_URL"):
            app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
        app.config.from_prefixed_env("MY_APP")
    else:
        app.config.from_mapping(overrides)

    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )


def default_database_uri(app: Flask) -> str:
    """The embedded default: a SQLite file in the instance folder."""
    return "sqlite:///" + os.path.join(app.instance_path, "my_app.sqlite")


def normalize_database_url(url: str | sa.URL) -> str:
    """Return ``url`` with a usable driver, or raise :class:`ConfigError` saying what to fix."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as e:  # ValueError: e.g. a port that is not a number
        raise ConfigError(
            f"Invalid database URL {_masked(url)!r}. Expected a URL such as"
            " 'postgresql://user@host/dbname' or 'sqlite:///path/to/file.sqlite';"
            " set DATABASE_URL or MY_APP_SQLALCHEMY_DATABASE_URI."
        ) from e

    backend, _, driver = parsed.drivername.partition("+")
    backend = _SCHEME_ALIASES.get(backend, backend)
    if not driver and backend in DEFAULT_DRIVERS:
        driver = DEFAULT_DRIVERS[backend]
    drivername = f"{backend}+{driver}" if driver else backend
    parsed = parsed.set(drivername=drivername)

    try:
        dialect_cls = parsed.get_dialect()
    except sa.exc.NoSuchModuleError as e:
        raise ConfigError(
            f"Unknown database URL scheme {parsed.drivername!r} in {_masked(parsed)!r}."
            " Use sqlite://, postgresql:// or mysql:// (mariadb://)."
        ) from e
    try:
        dialect_cls.import_dbapi()
    except ImportError as e:
        extra = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}.get(backend)
        hint = f" Install it with: pip install 'flask-data-workbench[{extra}]'." if extra else ""
        raise ConfigError(
            f"The database driver {driver or backend!r} for {_masked(parsed)!r} is not"
            f" installed.{hint}"
        ) from e
    return parsed.render_as_string(hide_password=False)


def _masked(url: str | sa.URL) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<unparseable URL>"
