"""Notebook integration: cell hooks, ``%load_ext analysis`` and the ``%connect`` magic.

``%load_ext analysis`` connects with ``FLASK_APP`` and puts what ``flask shell`` would offer
into the namespace; ``%connect`` opens another Workbench. The Workbench itself hooks into the
cells (:mod:`analysis.cells`): its app context is current in every cell, and read-only
transactions end after each one.

When JupySQL is installed, its magics come connected: ``%sql``, ``%%sql``, ``%sqlplot`` and
``%sqlcmd`` run on the Workbench's engine (:mod:`analysis.jupysql`) and follow ``%connect``.
``%sql`` and ``%%sql`` return their rows as a DataFrame typed as ``wb.frame()`` types raw SQL.
"""

from __future__ import annotations

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


def _connect_and_inject(
    shell: InteractiveShell, app: str | None, writable: bool | None, echo: bool | None = None
) -> Workbench:
    """Connect and put the Workbench's names into the namespace.

    With no app, the current Workbench (if any) switches to the mode asked for, on the same
    app: the factory does not run again. Without a mode flag, a new connection is read-only.
    """
    from .workbench import connect, current_or_none

    current = current_or_none()
    if app is None and current is not None:
        workbench = connect(
            current.app,
            writable=current.writable if writable is None else writable,
            echo=current.echo if echo is None else echo,
        )
    else:
        workbench = connect(app, writable=bool(writable), echo=bool(echo))
    t.cast(t.Any, shell).push(shell_namespace(workbench))
    return workbench


#: JupySQL's magics that run on its current connection.
_JUPYSQL_MAGICS = ("sql", "sqlplot", "sqlcmd")


def _register_jupysql(shell: InteractiveShell) -> None:
    """JupySQL's magics connected to the current Workbench, if JupySQL is installed.

    Each of ``%sql``, ``%%sql``, ``%sqlplot`` and ``%sqlcmd`` first makes sure the current
    Workbench's connection is JupySQL's (opened on first use, so a notebook that never runs
    one holds no extra connection; after ``%connect``, the new Workbench's), then runs as
    JupySQL runs it. ``%sql``/``%%sql`` return rows as a DataFrame typed as ``wb.frame()``
    types raw SQL: JupySQL's own result fetches lazily (an unfinished SQLite statement holds
    its read lock) and builds DataFrames with plain pandas inference. Statements without rows,
    and JupySQL's other results, pass through unchanged.

    JupySQL itself (with pandas, matplotlib and sqlglot: seconds to import) is loaded by the
    first of these magics that runs, unless it is loaded already.
    """
    import importlib.util

    if importlib.util.find_spec("sql") is None:
        return
    any_shell = t.cast(t.Any, shell)
    if "sql" in any_shell.extension_manager.loaded:
        _connect_jupysql(shell)
        return

    def load_then(name: str) -> t.Any:
        _connect_jupysql(shell)
        return any_shell.find_cell_magic(name) if name == "sql" else any_shell.find_line_magic(name)

    for name in _JUPYSQL_MAGICS:
        if name == "sql":
            proxy = _sql_magic(lambda line, cell, local_ns: load_then("sql")(line, cell, local_ns=local_ns))
        else:
            proxy = _line_magic(lambda line, name=name: load_then(name)(line))  # type: ignore[misc]
        proxy.__doc__ = f"%{name}: JupySQL's magic, on the current Workbench's connection."
        any_shell.register_magic_function(proxy, magic_kind="line_cell" if name == "sql" else "line", magic_name=name)


def _connect_jupysql(shell: InteractiveShell) -> None:
    """Load JupySQL (if not yet) and put the connecting wrappers around its magics."""
    from .workbench import current_or_none

    any_shell = t.cast(t.Any, shell)
    if "sql" not in any_shell.extension_manager.loaded:
        any_shell.extension_manager.load_extension("sql")
    execute = any_shell.find_cell_magic("sql")
    if execute is None or getattr(execute, "_analysis_wrapped", False):
        return  # JupySQL did not register (Databricks), or this is done already
    config = execute.__self__

    def connected() -> None:
        workbench = current_or_none()
        if workbench is not None:
            workbench.use_jupysql(config)

    for name in _JUPYSQL_MAGICS:
        original = any_shell.find_cell_magic(name) if name == "sql" else any_shell.find_line_magic(name)
        if original is None:
            continue
        if name == "sql":
            wrapper = _sql_magic(lambda line, cell, local_ns: _as_frame(execute(line, cell, local_ns)), connected)
        else:
            wrapper = _line_magic(original, connected)
        wrapper.__doc__ = original.__doc__
        t.cast(t.Any, wrapper)._analysis_wrapped = True
        any_shell.register_magic_function(wrapper, magic_kind="line_cell" if name == "sql" else "line", magic_name=name)


def _sql_magic(
    run: t.Callable[[str, str, t.Any], t.Any], before: t.Callable[[], None] | None = None
) -> t.Callable[..., t.Any]:
    """A line-and-cell magic that passes the line, the cell (or "") and the local scope on."""
    from IPython.core.magic import needs_local_scope

    @needs_local_scope
    def sql(line: str = "", cell: str | None = None, local_ns: dict[str, t.Any] | None = None) -> t.Any:
        if before is not None:
            before()
        return run(line, cell or "", local_ns)

    return sql


def _line_magic(run: t.Callable[[str], t.Any], before: t.Callable[[], None] | None = None) -> t.Callable[[str], t.Any]:
    def magic(line: str = "") -> t.Any:
        if before is not None:
            before()
        return run(line)

    return magic


def _as_frame(result: t.Any) -> t.Any:
    from sql.run.resultset import ResultSet

    if not isinstance(result, ResultSet) or not result.keys:
        return result
    from .read import rows_frame

    rows = [tuple(row) for row in result]
    return rows_frame([str(name) for name in result.field_names], rows)


USAGE = "usage: %connect [--writable | --read-only] [--echo] [module:create_app(...)]"
_MODES = {"--writable": True, "--read-only": False, "--readonly": False}


def parse_connect_line(line: str) -> tuple[str | None, bool | None, bool | None]:
    """``%connect``'s argument -> (the app in ``flask --app`` notation or ``None``, the mode,
    whether to echo statements).

    The app is taken as written, as ``flask --app`` receives it after the shell: quotes
    around the whole of it are optional (``%connect my_app:create_app('production')`` and
    ``%connect "my_app:create_app('production')"`` mean the same), and quotes inside it are
    the factory's arguments. The mode is ``True`` (``--writable``), ``False``
    (``--read-only``) or ``None`` (neither given); echo ``True`` with ``--echo``, else ``None``.
    """
    from IPython.core.error import UsageError

    writable: bool | None = None
    echo: bool | None = None
    words = []
    for word in _words(line):
        if word == "--echo":
            echo = True
        elif word.startswith("--"):
            if word not in _MODES:
                raise UsageError(f"%connect has no option {word}. {USAGE}")
            if writable is not None and writable != _MODES[word]:
                raise UsageError(f"--writable and --read-only contradict each other. {USAGE}")
            writable = _MODES[word]
        else:
            words.append(word)
    if len(words) > 1:
        raise UsageError(f"%connect takes one app, not {' '.join(words)!r}. {USAGE}")
    app = words[0] if words else None
    if app is not None and len(app) >= 2 and app[0] == app[-1] and app[0] in "'\"":
        app = app[1:-1].strip()
    return app or None, writable, echo


def _words(line: str) -> list[str]:
    """``line`` split at the spaces that are outside quotes and parentheses."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    depth = 0
    for char in line.strip():
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char.isspace() and depth == 0:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        words.append("".join(current))
    return words


def load_ipython_extension(shell: InteractiveShell) -> None:
    """``%load_ext analysis``: connect with FLASK_APP (if set) and register ``%connect``."""
    import os

    from IPython.core.error import UsageError
    from IPython.core.magic import register_line_magic

    from .errors import AnalysisError

    @register_line_magic("connect")  # type: ignore[arg-type]  # IPython types it as taking no function
    def connect_magic(line: str) -> Workbench:
        """%connect [--writable | --read-only] [--echo] [module:create_app(...)] -- open a
        Workbench (or, with no app, switch the current one's mode) and put its names in the
        namespace; --echo prints every statement it runs."""
        app, writable, echo = parse_connect_line(line)
        try:
            return _connect_and_inject(shell, app, writable, echo)
        except AnalysisError as e:
            # A message, not a traceback, as magics report user mistakes; the error itself
            # stays reachable as the UsageError's __cause__.
            raise UsageError(str(e)) from e

    del connect_magic
    _register_jupysql(shell)
    if os.environ.get("FLASK_APP"):
        try:
            _connect_and_inject(shell, None, writable=False)
        except AnalysisError as e:
            raise UsageError(str(e)) from e
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
