"""Extension objects, created unbound and bound to an app in :func:`my_app.create_app`."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for every model of the app."""


db = SQLAlchemy(model_class=Base)
