"""The host web app: a Flask + Flask-SQLAlchemy application built by :func:`create_app`."""

from __future__ import annotations

import os
import typing as t

from flask import Flask


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the app.

    ``config`` is a mapping of settings (tests pass one); without it the app reads
    ``instance/config.py`` and ``MY_APP_*`` / ``DATABASE_URL`` environment variables. With no
    configuration at all it uses a SQLite file in the instance folder.
    """
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)

    from . import config as config_module

    config_module.load_config(app, config)

    from . import db

    db.init_app(app)

    from . import errors

    errors.init_app(app)

    from . import admin, api, frontend

    app.register_blueprint(frontend.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)

    from . import cli

    cli.init_app(app)

    @app.shell_context_processor
    def shell_context() -> dict[str, t.Any]:
        from . import models

        context: dict[str, t.Any] = {"db": db.db}  # the SQLAlchemy object of module my_app.db
        context.update({name: getattr(models, name) for name in models.__all__})
        return context

    return app
