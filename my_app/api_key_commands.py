"""``flask --app my_app api-key create|list|revoke``: manage the keys cron jobs send.

A key is printed once, by ``create``; afterwards only its name and non-secret prefix are shown.
"""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from . import auth
from .cli import database_errors_as_messages
from .extensions import db
from .models import ApiKey


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
        new = auth.create_api_key(name)
    except auth.ApiKeyError as e:
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
    keys = auth.list_api_keys()
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
        record = auth.revoke_api_key(name)
    except auth.ApiKeyError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"Revoked API key {record.name!r}.")
