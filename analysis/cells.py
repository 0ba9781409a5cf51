"""IPython's cell events, for whoever needs to act before and after every cell.

A Workbench makes its app context current before each cell (``pre_run_cell``) and ends
read-only transactions after it (``post_run_cell``). Registering is a no-op outside IPython,
and unregistering is idempotent. IPython has no shutdown event: cleanup at kernel shutdown or
restart is an ``atexit`` function (see :mod:`analysis.workbench`).
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

_hooks: dict[int, tuple[t.Any, t.Callable[..., None], t.Callable[..., None]]] = {}


def running_shell() -> InteractiveShell | None:
    """The running IPython shell, or ``None`` (a plain script, or IPython not installed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell: InteractiveShell | None = get_ipython()
    return shell


def register(owner: object, before: t.Callable[[], None], after: t.Callable[[], None]) -> None:
    """Call ``before()`` before and ``after()`` after every cell, until :func:`unregister`."""
    shell = running_shell()
    if shell is None:
        return

    def pre_run_cell(info: t.Any = None) -> None:
        before()

    def post_run_cell(result: t.Any = None) -> None:
        after()

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)
    _hooks[id(owner)] = (shell, pre_run_cell, post_run_cell)


def unregister(owner: object) -> None:
    """Stop calling ``owner``'s functions; safe to call twice or without :func:`register`."""
    entry = _hooks.pop(id(owner), None)
    if entry is None:
        return
    shell, pre, post = entry
    for name, fn in (("pre_run_cell", pre), ("post_run_cell", post)):
        try:
            shell.events.unregister(name, fn)
        except ValueError:
            pass  # already gone: unregistering is idempotent
