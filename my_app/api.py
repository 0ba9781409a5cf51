"""The JSON API, versioned under ``/api/v1``."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from . import ingest
from .db import db
from .errors import DatabaseUnavailable
from .overview import table_row_counts

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# POST /api/v1/data lives in its own module; nested here, it answers errors in this JSON too.
bp.register_blueprint(ingest.bp)


@bp.errorhandler(HTTPException)
# Flask matches handlers by status code before class, so without this the app's HTML 503 page
# (my_app.errors) would win over the catch-all above.
@bp.errorhandler(DatabaseUnavailable)
def json_error(error: HTTPException) -> tuple[t.Any, int]:
    """API clients get JSON errors, not HTML pages; headers such as WWW-Authenticate stay."""
    response = jsonify(error=error.name, message=error.description)
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers.add(name, value)
    return response, error.code or 500


@bp.app_errorhandler(MethodNotAllowed)
def json_method_not_allowed(error: MethodNotAllowed) -> t.Any:
    """Routing errors happen before a blueprint is chosen; answer those under the API in JSON."""
    if request.path.startswith(f"{bp.url_prefix}/"):
        return json_error(error)
    return error


@bp.get("/health")
def health() -> dict[str, t.Any]:
    db.session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}


@bp.get("/tables")
def tables() -> dict[str, t.Any]:
    return {"tables": [{"name": name, "rows": rows} for name, rows in table_row_counts()]}
