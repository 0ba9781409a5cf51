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


_brief_shells: set[int] = set()


def show_briefly(exc_types: tuple[type[BaseException], ...]) -> None:
    """Show these exceptions in a cell as their message alone, without a traceback.

    The toolkit's errors say what went wrong and what to do; twenty frames of its insides only
    bury that. ``%tb`` still prints the full traceback, and the exception keeps its cause.
    """
    shell = running_shell()
    if shell is None or id(shell) in _brief_shells:
        return

    def brief(
        shell: t.Any, etype: type[BaseException], value: BaseException, tb: t.Any, tb_offset: t.Any = None
    ) -> None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, exception_only=True)

    t.cast(t.Any, shell).set_custom_exc(exc_types, brief)
    _brief_shells.add(id(shell))
