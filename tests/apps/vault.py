"""A one-module app that builds its ``app`` at import, with columns processed in Python.

* no factory: ``app = Flask(__name__)`` and ``db = SQLAlchemy(app)`` at module level, the
  single-file style of Flask-SQLAlchemy's quickstart (``flask --app apps.vault`` finds ``app``);
* ``Secret.payload`` is a ``PickleType``: the database stores pickled bytes, the ORM returns
  dicts and lists;
* ``Secret.note`` is an ``EncodedText``, a ``TypeDecorator`` whose ``process_bind_param`` /
  ``process_result_value`` encode and decode the text (base64 here, encryption in real apps):
  the database stores the encoded text, the ORM returns the plain one.

Configuration: ``VAULT_SQLALCHEMY_DATABASE_URI`` (Flask's ``from_prefixed_env``), read when the
module is imported.
"""

from __future__ import annotations

import base64
import datetime as dt
import typing as t

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config.from_mapping(SECRET_KEY="dev", SQLALCHEMY_DATABASE_URI="sqlite:///vault.sqlite")
app.config.from_prefixed_env("VAULT")
db = SQLAlchemy(app)


class EncodedText(sa.types.TypeDecorator[str]):
    """Text stored encoded (base64 of its UTF-8 bytes) and returned decoded."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else base64.b64encode(value.encode()).decode("ascii")

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else base64.b64decode(value).decode()


class Secret(db.Model):
    __tablename__ = "secrets"

    id = db.Column(db.Integer, primary_key=True, autoincrement=False)
    label = db.Column(db.String(40), nullable=False)
    note = db.Column(EncodedText)
    payload = db.Column(db.PickleType)
    stored_at = db.Column(db.DateTime, nullable=False)


#: The seed rows: plain values as the ORM returns them.
SECRETS: list[dict[str, t.Any]] = [
    {"id": 1, "label": "wifi", "note": "the password is on the fridge", "payload": {"ssid": "home", "channels": [1, 6]}},
    {"id": 2, "label": "alarm", "note": "=1+2, said the \"installer\"", "payload": [4, 2, "zero", None, 1.5]},
    {"id": 3, "label": "empty", "note": None, "payload": None},
    {"id": 4, "label": "unicode", "note": "Grüße, 東京\nline two", "payload": {"nested": {"ok": True, "n": -3}}},
]


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create the tables and a few deterministic rows."""
    db.create_all()
    start = dt.datetime(2026, 2, 1, 12, 0)
    db.session.add_all(Secret(**row, stored_at=start + dt.timedelta(minutes=row["id"])) for row in SECRETS)
    db.session.commit()
    click.echo("seeded")


app.cli.add_command(seed_command)
