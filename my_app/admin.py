"""Admin pages. API keys are listed by name and state, never by value.

The pages are off until ``ADMIN_PASSWORD`` is configured (``MY_APP_ADMIN_PASSWORD``); then they
ask for HTTP Basic credentials, user ``admin``, checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, render_template, request

from .db import db
from .models import ApiKey

bp = Blueprint("admin", __name__, url_prefix="/admin")

ADMIN_USER = "admin"


@bp.before_request
def require_admin() -> Response | None:
    password = current_app.config.get("ADMIN_PASSWORD")
    if not password:
        return Response(
            "The admin pages are off. Set MY_APP_ADMIN_PASSWORD (or ADMIN_PASSWORD in"
            " instance/config.py) to turn them on.\n",
            status=403,
            mimetype="text/plain",
        )
    auth = request.authorization
    given_user = auth.username if auth and auth.type == "basic" and auth.username else ""
    given_password = auth.password if auth and auth.type == "basic" and auth.password else ""
    # Compare digests, so both sides have the same length whatever was sent.
    user_ok = hmac.compare_digest(_digest(given_user), _digest(ADMIN_USER))
    password_ok = hmac.compare_digest(_digest(given_password), _digest(str(password)))
    if not (user_ok and password_ok):
        return Response(
            "Admin credentials required.\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Basic realm="my_app admin", charset="UTF-8"'},
        )
    return None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


@bp.get("/")
def index() -> str:
    keys = db.session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at)).all()
    return render_template("admin/keys.html", keys=keys)
