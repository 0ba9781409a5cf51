"""An app with a table in another schema: ``__table_args__ = {"schema": ...}``.

``Invoice`` lives in the connection's own schema (PostgreSQL's ``search_path``, MariaDB's
database); ``ArchivedInvoice`` in the schema named by ``SCHEMAS_ARCHIVE_SCHEMA`` (``archive``
by default), read when the module is imported, as apps read such names from settings. On
MariaDB a schema is another database on the same server.

Configuration: ``SCHEMAS_SQLALCHEMY_DATABASE_URI`` (Flask's ``from_prefixed_env``) and
``SCHEMAS_ARCHIVE_SCHEMA``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import typing as t

import click
from flask import Flask
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy

ARCHIVE_SCHEMA = os.environ.get("SCHEMAS_ARCHIVE_SCHEMA", "archive")

db = SQLAlchemy()


class Invoice(db.Model):
    __tablename__ = "invoices"

    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.String(20), unique=True, nullable=False)
    total = db.Column(db.Numeric(12, 2), nullable=False)
    issued_on = db.Column(db.Date, nullable=False)


class ArchivedInvoice(db.Model):
    __tablename__ = "archived_invoices"
    __table_args__ = {"schema": ARCHIVE_SCHEMA}

    id = db.Column(db.Integer, primary_key=True)
    # No foreign key: MariaDB resolves the target in the archive's own database.
    invoice_id = db.Column(db.Integer, nullable=False)
    archived_at = db.Column(db.DateTime, nullable=False)
    reason = db.Column(db.String(80))


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="dev", SQLALCHEMY_DATABASE_URI="sqlite:///schemas.sqlite")
    app.config.from_prefixed_env("SCHEMAS")
    if config:
        app.config.update(config)
    db.init_app(app)
    app.cli.add_command(seed_command)
    return app


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create the tables (the archive schema must exist) and a few deterministic rows."""
    db.create_all()
    invoices = [
        Invoice(id=1, number="2026-0001", total=decimal.Decimal("1200.00"), issued_on=dt.date(2026, 1, 3)),
        Invoice(id=2, number="2026-0002", total=decimal.Decimal("35.10"), issued_on=dt.date(2026, 1, 9)),
        Invoice(id=3, number="2026-0003", total=decimal.Decimal("0.99"), issued_on=dt.date(2026, 2, 1)),
    ]
    db.session.add_all(invoices)
    db.session.flush()
    db.session.add_all(
        [
            ArchivedInvoice(id=1, invoice_id=1, archived_at=dt.datetime(2026, 3, 1, 0, 0), reason="paid"),
            ArchivedInvoice(id=2, invoice_id=2, archived_at=dt.datetime(2026, 3, 2, 12, 30), reason=None),
        ]
    )
    db.session.commit()
    click.echo("seeded")
