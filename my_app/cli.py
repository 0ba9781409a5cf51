"""``flask --app my_app ...`` commands besides init-db/drop-db (in :mod:`my_app.db`):
``seed``, ``api-key create|list|revoke`` and ``run-job``.

An API key is printed once, by ``api-key create``; afterwards only its name and non-secret
prefix are shown.
"""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext

from . import api_keys
from .db import database_errors_as_messages, db, import_models
from .models import ApiKey


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_command)
    app.cli.add_command(api_key_group)
    from .jobs import run_job_command  # job modules (and the analysis toolkit) load only when run

    app.cli.add_command(run_job_command)


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

    import_models()
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


@click.group("api-key")
def api_key_group() -> None:
    """Create, list and revoke the API keys of the ingest endpoint."""


def _require_table() -> None:
    """Say "run init-db" rather than let a missing table look like a connection problem."""
    if not sa.inspect(db.engine).has_table(ApiKey.__tablename__):
        raise click.ClickException(
            "The database has no api_keys table yet. Create the tables with:"
            " flask --app my_app init-db"
        )


@api_key_group.command("create")
@click.argument("name")
@with_appcontext
@database_errors_as_messages
def create_command(name: str) -> None:
    """Create a key called NAME and print it (the only time it is shown)."""
    _require_table()
    try:
        new = api_keys.create_api_key(name)
    except api_keys.ApiKeyError as e:
        raise click.ClickException(str(e)) from e
    click.echo(
        f"Created API key {new.record.name!r}. Copy it now: only its hash is stored,"
        " so it cannot be shown again.\n"
    )
    click.echo(f"    {new.key}\n")
    click.echo(
        "Send it as 'Authorization: Bearer <key>'. Revoke it with:"
        f" flask --app my_app api-key revoke {new.record.name}"
    )


@api_key_group.command("list")
@with_appcontext
@database_errors_as_messages
def list_command() -> None:
    """List the keys by name, with prefix, creation, last use and state (never the key)."""
    _require_table()
    keys = api_keys.list_api_keys()
    if not keys:
        click.echo("No API keys yet. Create one with: flask --app my_app api-key create NAME")
        return
    rows = [("name", "prefix", "created (UTC)", "last used (UTC)", "state")]
    for key in keys:
        rows.append(
            (
                key.name,
                key.prefix,
                f"{key.created_at:%Y-%m-%d %H:%M}",
                f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
                "active" if key.revoked_at is None else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@api_key_group.command("revoke")
@click.argument("name")
@with_appcontext
@database_errors_as_messages
def revoke_command(name: str) -> None:
    """Revoke the key called NAME: requests that send it get 401 from now on."""
    _require_table()
    try:
        record = api_keys.revoke_api_key(name)
    except api_keys.ApiKeyError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"Revoked API key {record.name!r}.")
