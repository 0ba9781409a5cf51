"""Notebook integration: cell hooks, ``%load_ext analysis`` and the ``%connect`` magic.

``%load_ext analysis`` connects with ``FLASK_APP`` and puts what ``flask shell`` would offer
into the namespace; ``%connect`` opens another Workbench. The Workbench itself hooks into the
cells (:mod:`analysis.cells`): its app context is current in every cell, and read-only
transactions end after each one.
"""

from __future__ import annotations

import argparse
import shlex
import typing as t

if t.TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .workbench import Workbench

def shell_namespace(workbench: Workbench) -> dict[str, t.Any]:
    """What ``flask shell`` would offer: app, db, the models, shell context processors."""
    workbench.activate()
    namespace: dict[str, t.Any] = {"app": workbench.app, "db": workbench.db, "wb": workbench}
    namespace.update(workbench.models)
    namespace.update(workbench.app.make_shell_context())
    namespace["app"] = workbench.app
    return namespace


def _connect_and_inject(shell: InteractiveShell, app: str | None, writable: bool) -> Workbench:
    from .workbench import connect

    workbench = connect(app, writable=writable)
    t.cast(t.Any, shell).push(shell_namespace(workbench))
    return workbench


def _parse_connect_args(line: str) -> argparse.Namespace:
    from IPython.core.error import UsageError

    parser = argparse.ArgumentParser(prog="%connect", add_help=False)
    parser.add_argument("app", nargs="?", default=None)
    parser.add_argument("--writable", action="store_true")
    try:
        return parser.parse_args(shlex.split(line))
    except SystemExit:
        raise UsageError("usage: %connect [--writable] [module:create_app]") from None


def load_ipython_extension(shell: InteractiveShell) -> None:
    """``%load_ext analysis``: connect with FLASK_APP (if set) and register ``%connect``."""
    import os

    from IPython.core.error import UsageError
    from IPython.core.magic import register_line_magic

    from .errors import AnalysisError

    @register_line_magic("connect")  # type: ignore[arg-type]  # IPython types it as taking no function
    def connect_magic(line: str) -> Workbench:
        """%connect [--writable] [module:create_app] -- open a Workbench and inject its names."""
        args = _parse_connect_args(line)
        try:
            return _connect_and_inject(shell, args.app, args.writable)
        except AnalysisError as e:
            raise UsageError(str(e)) from None

    del connect_magic
    if os.environ.get("FLASK_APP"):
        try:
            _connect_and_inject(shell, None, writable=False)
        except AnalysisError as e:
            raise UsageError(str(e)) from None
    else:
        print(
            "analysis loaded. FLASK_APP is not set: connect with %connect my_app:create_app"
            " (add --writable to allow writes)."
        )


def unload_ipython_extension(shell: InteractiveShell) -> None:
    from .workbench import current_or_none

    workbench = current_or_none()
    if workbench is not None:
        workbench.close()
