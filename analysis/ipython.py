"""Notebook integration: cell hooks, ``%load_ext analysis`` and the ``%connect`` magic.

Cell hooks keep the Workbench's app context current before every cell (``pre_run_cell``) and
end read-only transactions after every cell (``post_run_cell``). IPython has no shutdown
event; cleanup at kernel shutdown or restart is an ``atexit`` function (see session.py).
"""

from __future__ import annotations

import argparse
import shlex
import typing as t

if t.TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .session import Workbench

_hooks: dict[int, tuple[t.Any, t.Callable[..., None], t.Callable[..., None]]] = {}


def _shell() -> InteractiveShell | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def register_cell_hooks(workbench: Workbench) -> None:
    """Hook ``workbench`` into the running IPython shell, if there is one."""
    shell = _shell()
    if shell is None:
        return

    def pre_run_cell(info: t.Any = None) -> None:
        if not workbench.closed:
            workbench.activate()

    def post_run_cell(result: t.Any = None) -> None:
        if not workbench.closed:
            workbench.release()

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)
    _hooks[id(workbench)] = (shell, pre_run_cell, post_run_cell)


def unregister_cell_hooks(workbench: Workbench) -> None:
    entry = _hooks.pop(id(workbench), None)
    if entry is None:
        return
    shell, pre, post = entry
    for name, fn in (("pre_run_cell", pre), ("post_run_cell", post)):
        try:
            shell.events.unregister(name, fn)
        except ValueError:
            pass  # already gone: unregistering is idempotent


def shell_namespace(workbench: Workbench) -> dict[str, t.Any]:
    """What ``flask shell`` would offer: app, db, the models, shell context processors."""
    workbench.activate()
    namespace: dict[str, t.Any] = {"app": workbench.app, "db": workbench.db, "wb": workbench}
    namespace.update(workbench.models)
    namespace.update(workbench.app.make_shell_context())
    namespace["app"] = workbench.app
    return namespace


def _connect_and_inject(shell: InteractiveShell, app: str | None, writable: bool) -> Workbench:
    from .session import connect

    workbench = connect(app, writable=writable)
    shell.push(shell_namespace(workbench))
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

    @register_line_magic("connect")
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
    from . import session

    if session._current is not None:
        session._current.close()
