"""An app on two databases, through Flask-SQLAlchemy's binds.

* the default database holds the catalogue (``Product``);
* the bind ``warehouse`` holds ``Shipment`` (``__bind_key__``) and ``stock``, a plain
  ``db.Table(..., bind_key="warehouse")`` with no model;
* the two may be of different kinds (a SQLite file beside PostgreSQL or MariaDB), and a
  table name (``notes``) exists on both, as Flask-SQLAlchemy 3 allows (one MetaData per bind).

Configuration: ``BINDS_SQLALCHEMY_DATABASE_URI`` and ``BINDS_SQLALCHEMY_BINDS__warehouse``
(Flask's ``from_prefixed_env``; ``__`` reaches into the ``SQLALCHEMY_BINDS`` dict).
"""

from __future__ import annotations

import datetime as dt
import decimal
import typing as t

import click
from flask import Flask
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()

stock = db.Table(
    "stock",
    db.Column("product_id", db.Integer, primary_key=True, autoincrement=False),
    db.Column("on_hand", db.Integer, nullable=False),
    db.Column("counted_at", db.DateTime),
    bind_key="warehouse",
)


class Product(db.Model):
    __tablename__ = "products"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)
    price = db.Column(db.Numeric(10, 2), nullable=False)
    active = db.Column(db.Boolean, nullable=False, default=True)


class Note(db.Model):
    """``notes`` on the default database."""

    __tablename__ = "notes"

    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.Text, nullable=False)


class Shipment(db.Model):
    __bind_key__ = "warehouse"
    __tablename__ = "shipments"

    id = db.Column(db.Integer, primary_key=True)
    product_id = db.Column(db.Integer, nullable=False)  # a product of the other database
    quantity = db.Column(db.Integer, nullable=False)
    shipped_at = db.Column(db.DateTime)


class WarehouseNote(db.Model):
    """``notes`` on the warehouse database: the same table name as :class:`Note`."""

    __bind_key__ = "warehouse"
    __tablename__ = "notes"

    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.Text, nullable=False)
    urgent = db.Column(db.Boolean)


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY="dev",
        SQLALCHEMY_DATABASE_URI="sqlite:///catalogue.sqlite",
        SQLALCHEMY_BINDS={"warehouse": "sqlite:///warehouse.sqlite"},
    )
    app.config.from_prefixed_env("BINDS")
    if config:
        app.config.update(config)
    db.init_app(app)
    app.cli.add_command(seed_command)
    return app


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create the tables on both databases and a few deterministic rows."""
    db.create_all()
    seed()
    click.echo("seeded")


def seed() -> None:
    db.session.add_all(
        [
            Product(id=1, name="Anvil", price=decimal.Decimal("99.90"), active=True),
            Product(id=2, name="Bucket", price=decimal.Decimal("4.50"), active=False),
            Product(id=3, name="Crate", price=decimal.Decimal("12.00"), active=True),
            Note(id=1, text="catalogue note"),
            Shipment(id=1, product_id=1, quantity=5, shipped_at=dt.datetime(2026, 1, 2, 10, 0)),
            Shipment(id=2, product_id=3, quantity=12, shipped_at=None),
            Shipment(id=3, product_id=1, quantity=1, shipped_at=dt.datetime(2026, 1, 3, 16, 45, 30)),
            WarehouseNote(id=1, text="dock 4 closed", urgent=True),
            WarehouseNote(id=2, text="new forklift", urgent=None),
        ]
    )
    # Flask-SQLAlchemy 3.0 finds the bind of a model, not of a Core statement: name it.
    db.session.execute(
        stock.insert(),
        [
            {"product_id": 1, "on_hand": 40, "counted_at": dt.datetime(2026, 1, 1, 7, 0)},
            {"product_id": 2, "on_hand": 0, "counted_at": None},
            {"product_id": 3, "on_hand": 7, "counted_at": dt.datetime(2026, 1, 1, 7, 5)},
        ],
        bind_arguments={"bind": db.engines["warehouse"]},
    )
    db.session.commit()
