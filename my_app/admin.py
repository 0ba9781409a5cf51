"""Admin pages. API keys are listed by name and state, never by value."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template

from .extensions import db
from .models import ApiKey

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
def index() -> str:
    keys = db.session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at)).all()
    return render_template("admin/keys.html", keys=keys)
