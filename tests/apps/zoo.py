"""A zoo in the SQLAlchemy 2.x style, with both kinds of inheritance.

* ``DeclarativeBase`` with ``Mapped[...]`` annotations (Flask-SQLAlchemy 3.1's ``model_class``);
* single-table inheritance: ``Dog`` and ``Cat`` are ``Animal`` rows in the table ``animals``,
  told apart by ``kind``, each with a column of its own (``good_boy``, ``lives``);
* joined-table inheritance: ``Keeper`` and ``Vet`` extend ``Employee`` (table ``employees``)
  with tables of their own (``keepers``, ``vets``);
* a factory taking a config name, as in ``flask --app "apps.zoo:create_app('testing')"``.

Configuration: ``ZOO_SQLALCHEMY_DATABASE_URI`` (Flask's ``from_prefixed_env``).
"""

from __future__ import annotations

import datetime as dt
import typing as t

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

CONFIGS: dict[str, dict[str, t.Any]] = {
    "default": {},
    "testing": {"TESTING": True},
}


class Employee(db.Model):
    __tablename__ = "employees"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    type: Mapped[str] = mapped_column(sa.String(20))
    hired_at: Mapped[dt.datetime]

    __mapper_args__ = {"polymorphic_on": "type", "polymorphic_identity": "employee"}


class Keeper(Employee):
    __tablename__ = "keepers"

    id: Mapped[int] = mapped_column(sa.ForeignKey("employees.id"), primary_key=True)
    enclosure: Mapped[str] = mapped_column(sa.String(30))
    animals: Mapped[list[Animal]] = relationship(back_populates="keeper")

    __mapper_args__ = {"polymorphic_identity": "keeper"}


class Vet(Employee):
    __tablename__ = "vets"

    id: Mapped[int] = mapped_column(sa.ForeignKey("employees.id"), primary_key=True)
    licence: Mapped[str | None] = mapped_column(sa.String(30))

    __mapper_args__ = {"polymorphic_identity": "vet"}


class Animal(db.Model):
    __tablename__ = "animals"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    kind: Mapped[str] = mapped_column(sa.String(20))
    born: Mapped[dt.date | None]
    keeper_id: Mapped[int | None] = mapped_column(sa.ForeignKey("keepers.id"))
    keeper: Mapped[Keeper | None] = relationship(back_populates="animals")

    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "animal"}


class Dog(Animal):
    good_boy: Mapped[bool | None] = mapped_column(nullable=True)

    __mapper_args__ = {"polymorphic_identity": "dog"}


class Cat(Animal):
    lives: Mapped[int | None] = mapped_column(nullable=True)

    __mapper_args__ = {"polymorphic_identity": "cat"}


def create_app(config_name: str = "default") -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="dev", SQLALCHEMY_DATABASE_URI="sqlite:///zoo.sqlite")
    app.config.from_prefixed_env("ZOO")
    app.config.update(CONFIGS[config_name])
    db.init_app(app)
    app.cli.add_command(seed_command)
    return app


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Create the tables and a few deterministic rows."""
    db.create_all()
    seed()
    click.echo("seeded")


def seed() -> None:
    day = dt.datetime(2025, 3, 1, 8, 0)
    keepers = [
        Keeper(id=1, name="Kim", hired_at=day, enclosure="north"),
        Keeper(id=2, name="Lou", hired_at=day + dt.timedelta(days=30, microseconds=250), enclosure="pond"),
    ]
    vet = Vet(id=3, name="Dr. Mo", hired_at=day + dt.timedelta(days=60), licence=None)
    animals = [
        Dog(id=1, name="Rex", born=dt.date(2020, 5, 17), keeper=keepers[0], good_boy=True),
        Dog(id=2, name="Fido", born=None, keeper=keepers[0], good_boy=None),
        Cat(id=3, name="Tom", born=dt.date(2019, 1, 2), keeper=keepers[1], lives=9),
        Animal(id=4, name="Nemo", born=dt.date(2024, 7, 1), keeper=None),
    ]
    db.session.add_all([*keepers, vet, *animals])
    db.session.commit()
