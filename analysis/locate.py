"""Build a Flask app from what the user has: an app, a factory, or a ``flask --app`` string.

The string notation is Flask's own (``"pkg"``, ``"pkg:create_app"``,
``"pkg:create_app('production')"``), so whatever works with ``flask --app`` works here.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import os
import sys
import types
import typing as t

from flask import Flask

from .errors import AppFactoryError, AppNotFoundError, first_line

AppSource = Flask | t.Callable[..., Flask] | str | None

_FACTORY_NAMES = ("create_app", "make_app")
_APP_NAMES = ("app", "application")


def build_app(source: AppSource, config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Return a Flask app built from ``source``; ``config`` is passed to the factory.

    ``source`` defaults to the ``FLASK_APP`` environment variable.
    """
    if source is None:
        source = os.environ.get("FLASK_APP")
        if not source:
            raise AppNotFoundError(
                "No app given and FLASK_APP is not set. Pass one, as in"
                " analysis.connect('my_app:create_app'), or set the FLASK_APP environment"
                " variable (FLASK_APP=my_app) before starting Jupyter or Python."
            )
    if isinstance(source, Flask):
        if config:
            raise AppFactoryError(
                "config= cannot be applied to an app that is already built (its database"
                " engine exists). Pass the factory instead: connect(create_app, config=...)."
            )
        return source
    if isinstance(source, str):
        return _build_from_string(source, config)
    if callable(source):
        return _call_factory(source, _describe(source), (), config)
    raise AppNotFoundError(
        f"Cannot build an app from {source!r}: pass a Flask app, an app factory, or an import"
        " string such as 'my_app:create_app'."
    )


def _build_from_string(spec: str, config: t.Mapping[str, t.Any] | None) -> Flask:
    module_name, _, expr = spec.strip().partition(":")
    if module_name.endswith(".py"):
        module_name = module_name[:-3].replace(os.sep, ".")
    module = _import(module_name, spec)
    if not expr:
        return _find_in_module(module, spec, config)

    name, args = _parse_expression(expr, spec)
    try:
        target = getattr(module, name)
    except AttributeError:
        raise AppNotFoundError(
            f"No app factory found at {spec!r}: module {module_name!r} has no attribute"
            f" {name!r}.{_suggest(name, _candidates(module))}"
        ) from None
    if isinstance(target, Flask):
        if args is not None:
            raise AppNotFoundError(f"{module_name}:{name} is a Flask app, not a factory to call.")
        return build_app(target, config)
    if callable(target):
        return _call_factory(target, f"{module_name}:{name}", args or (), config)
    raise AppNotFoundError(
        f"{module_name}:{name} is a {type(target).__name__}, not a Flask app or app factory."
    )


def _import(module_name: str, spec: str) -> types.ModuleType:
    # Like `flask --app`, look in the working directory too.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise AppNotFoundError(
                f"Cannot import {module_name!r} (from {spec!r}): no such module. Is the"
                " package installed in this kernel's environment (pip install -e .), or is"
                f" the working directory ({os.getcwd()}) the one that contains it?"
            ) from None
        raise AppNotFoundError(
            f"Importing {module_name!r} failed because it needs {e.name!r}, which is not"
            " installed in this environment. Install the app's dependencies."
        ) from e
    except Exception as e:
        raise AppFactoryError(
            f"Importing {module_name!r} raised {type(e).__name__}: {e}. Fix the error in the"
            " app's module (the full traceback is in the exception's __cause__)."
        ) from e


def _parse_expression(expr: str, spec: str) -> tuple[str, tuple[t.Any, ...] | None]:
    """``"create_app"`` -> (name, None); ``"create_app('x')"`` -> (name, ('x',))."""
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise AppNotFoundError(f"Cannot parse {expr!r} in {spec!r} as an attribute or call.") from None
    if isinstance(node, ast.Name):
        return node.id, None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        try:
            args = tuple(ast.literal_eval(arg) for arg in node.args)
            if node.keywords:
                raise ValueError
        except ValueError:
            raise AppNotFoundError(
                f"The factory arguments in {spec!r} must be positional Python literals."
            ) from None
        return node.func.id, args
    raise AppNotFoundError(f"{expr!r} in {spec!r} is not a name or a call of a name.")


def _find_in_module(
    module: types.ModuleType, spec: str, config: t.Mapping[str, t.Any] | None
) -> Flask:
    for name in _APP_NAMES:
        if isinstance(getattr(module, name, None), Flask):
            return build_app(getattr(module, name), config)
    for name in _FACTORY_NAMES:
        factory = getattr(module, name, None)
        if callable(factory):
            return _call_factory(factory, f"{module.__name__}:{name}", (), config)
    apps = [v for v in vars(module).values() if isinstance(v, Flask)]
    if len(apps) == 1:
        return build_app(apps[0], config)
    raise AppNotFoundError(
        f"No Flask app or factory found in module {module.__name__!r}: looked for"
        f" {', '.join(_APP_NAMES + _FACTORY_NAMES)}. Name it explicitly, as in"
        f" '{module.__name__}:create_app'."
    )


def _call_factory(
    factory: t.Callable[..., Flask],
    name: str,
    args: tuple[t.Any, ...],
    config: t.Mapping[str, t.Any] | None,
) -> Flask:
    if config is not None:
        if args:
            raise AppFactoryError(f"Pass either factory arguments in the string or config=, not both ({name}).")
        if not _accepts_one_argument(factory):
            raise AppFactoryError(
                f"config= was given but the factory {name} takes no arguments; give it a"
                " parameter (def create_app(config=None)) or set the config another way."
            )
        args = (dict(config),)
    try:
        app = factory(*args)
    except Exception as e:
        raise AppFactoryError(
            f"The app factory {name} raised {type(e).__name__}: {first_line(e)}."
            " Fix the app's configuration (or the factory) and connect again; the full"
            " traceback is in this exception's __cause__."
        ) from e
    if not isinstance(app, Flask):
        raise AppFactoryError(f"The app factory {name} returned {type(app).__name__}, not a Flask app.")
    return app


def _accepts_one_argument(f: t.Callable[..., t.Any]) -> bool:
    try:
        inspect.signature(f).bind(None)
    except (TypeError, ValueError):
        return False
    return True


def _candidates(module: types.ModuleType) -> list[str]:
    return [
        k for k, v in vars(module).items()
        if not k.startswith("_") and (isinstance(v, Flask) or inspect.isfunction(v))
    ]


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    if close:
        return f" Did you mean {close[0]!r}?"
    factories = [c for c in candidates if c in _FACTORY_NAMES + _APP_NAMES]
    return f" It has: {', '.join(factories)}." if factories else ""


def _describe(f: t.Callable[..., t.Any]) -> str:
    module = getattr(f, "__module__", None)
    name = getattr(f, "__qualname__", repr(f))
    return f"{module}:{name}" if module else name


def import_string_for(source: AppSource) -> str | None:
    """``source`` as a ``flask --app`` string another process can build the same app from:
    the string itself, ``FLASK_APP`` for ``None``, ``"module:name"`` for a module-level factory
    or app; ``None`` when there is no such string (a lambda, an app made inside a function)."""
    if source is None:
        return os.environ.get("FLASK_APP") or None
    if isinstance(source, str):
        return source.strip()
    if isinstance(source, Flask):
        module = sys.modules.get(source.import_name)
        names = [name for name, value in vars(module).items() if value is source] if module else []
        return f"{source.import_name}:{names[0]}" if names else None
    module_name = getattr(source, "__module__", None)
    qualname = getattr(source, "__qualname__", "")
    module = sys.modules.get(module_name or "")
    if module is None or module_name == "__main__" or "." in qualname or getattr(module, qualname, None) is not source:
        return None
    return f"{module_name}:{qualname}"
