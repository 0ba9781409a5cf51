"""The HTML front page: which tables the app has and how many rows each holds."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template

from .db import db, is_transient
from .overview import table_row_counts

bp = Blueprint("frontend", __name__)


@bp.get("/")
def index() -> str:
    try:
        counts = table_row_counts()
        error = None
    except sa.exc.OperationalError as e:
        if is_transient(e):
            raise  # a 503 page (my_app.errors), not "run init-db"
        db.session.rollback()
        counts, error = [], "The database has no tables yet: run `flask --app my_app init-db`."
    return render_template("overview.html", counts=counts, error=error)
