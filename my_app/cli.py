"""``flask --app my_app ...`` commands for the database: init-db, seed, drop-db."""

from __future__ import annotations

import functools
import typing as t

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext

from .database import connection_error_message
from .extensions import db

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def init_app(app: Flask) -> None:
    app.cli.add_command(init_db_command)
    app.cli.add_command(seed_command)
    app.cli.add_command(drop_db_command)
    from .api_key_commands import api_key_group  # imports this module: import here, not at top

    app.cli.add_command(api_key_group)
    from .jobs import run_job_command  # job modules (and the analysis toolkit) load only when run

    app.cli.add_command(run_job_command)


def database_errors_as_messages(f: F) -> F:
    """Turn "server unreachable" and other driver errors into one line and exit status 1."""

    @functools.wraps(f)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return f(*args, **kwargs)
        except sa.exc.OperationalError as e:
            raise click.ClickException(connection_error_message(db.engine, e)) from e
        except sa.exc.DBAPIError as e:
            reason = str(e.orig).strip().splitlines()[0]
            raise click.ClickException(f"The database refused the operation: {reason}") from e

    return t.cast(F, wrapper)


def _import_models() -> None:
    from . import models  # noqa: F401  (registers the tables on db.metadata)


@click.command("init-db")
@with_appcontext
@database_errors_as_messages
def init_db_command() -> None:
    """Create the tables that do not exist yet (safe to run twice)."""
    _import_models()
    db.create_all()
    click.echo(f"Initialised the database ({len(db.metadata.tables)} tables).")


@click.command("seed")
@with_appcontext
@click.option("--users", default=1000, show_default=True, type=click.IntRange(min=0))
@click.option("--events", default=50_000, show_default=True, type=click.IntRange(min=0))
@click.option("--data-points", default=1000, show_default=True, type=click.IntRange(min=0))
@click.option("--random-seed", default=42, show_default=True, help="Same seed, same data.")
@click.option("--reset", is_flag=True, help="Delete existing demo rows first.")
@click.option("--if-empty", is_flag=True, help="Do nothing if there are users already.")
@database_errors_as_messages
def seed_command(
    users: int, events: int, data_points: int, random_seed: int, reset: bool, if_empty: bool
) -> None:
    """Fill the database with deterministic demo data (creating the tables if needed)."""
    from tqdm.auto import tqdm

    from . import seed as seeding
    from .models import User

    _import_models()
    db.create_all()
    existing = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    db.session.rollback()
    if existing and if_empty and not reset:
        click.echo(f"The database already has {existing:,} users; not seeding.")
        return
    if existing and not reset:
        raise click.ClickException(
            f"The database already has {existing:,} users. Pass --reset to replace the demo data."
        )
    if reset:
        seeding.reset()
    if users < 1 and events > 0:
        raise click.BadParameter("events need users: pass --users 1 or more", param_hint="--users")

    total = users + events + data_points
    with tqdm(total=total, unit="rows", unit_scale=True, desc="seeding") as bar:
        seeding.seed(
            users=users,
            events=events,
            data_points=data_points,
            random_seed=random_seed,
            progress=bar.update,
        )
    click.echo(f"Seeded {users:,} users, {events:,} events and {data_points:,} data points.")


@click.command("drop-db")
@with_appcontext
@click.confirmation_option(prompt="This deletes every table and all data. Continue?")
@database_errors_as_messages
def drop_db_command() -> None:
    """Drop every table the app declares."""
    _import_models()
    db.drop_all()
    click.echo("Dropped all tables.")
