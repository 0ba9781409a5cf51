"""The JSON API, versioned under ``/api/v1``."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Blueprint, jsonify
from werkzeug.exceptions import HTTPException

from .extensions import db
from .overview import table_row_counts

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.errorhandler(HTTPException)
def json_error(error: HTTPException) -> tuple[t.Any, int]:
    """API clients get JSON errors, not HTML pages."""
    response = jsonify(error=error.name, message=error.description)
    return response, error.code or 500


@bp.get("/health")
def health() -> dict[str, t.Any]:
    db.session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}


@bp.get("/tables")
def tables() -> dict[str, t.Any]:
    return {"tables": [{"name": name, "rows": rows} for name, rows in table_row_counts()]}
