"""Named reports: a query written once, used from notebooks and from the command line.

A report is a function that takes keyword parameters and returns anything ``frame()``
accepts (a ``select()``, a ``Model.query``, a SQL string...) or a ready DataFrame. Register
one in a notebook or script with the :func:`report` decorator::

    @analysis.report("active-users-by-country")
    def active_users_by_country(min_users: int = 10):
        \"\"\"Countries with at least ``min_users`` active users.\"\"\"
        return (sa.select(User.country, sa.func.count().label("users"))
                .where(User.active).group_by(User.country)
                .having(sa.func.count() >= min_users))

    wb.report("active-users-by-country", min_users=50)          # -> DataFrame

A host app declares its reports without importing this toolkit: the config key
``ANALYSIS_REPORTS`` names modules (an import string, or a list of them) that each define
``REPORTS``, a dict of report name -> function. Then
``flask --app my_app report NAME -o out.csv --param min_users=50`` works too.

Parameters given as text (``--param since=2026-01-01``) are converted using the function's
annotations: ``str``, ``int``, ``float``, ``bool``, ``decimal.Decimal``, ``datetime.date``,
``datetime.datetime``, an ``enum.Enum`` (by name or value), and ``X | None`` of these.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import difflib
import enum
import importlib
import inspect
import types
import typing as t

from .errors import ParameterError, ReportNotFoundError

if t.TYPE_CHECKING:
    import pandas as pd
    from flask import Flask

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

#: The config key a host app sets to declare its reports (import strings of modules).
CONFIG_KEY = "ANALYSIS_REPORTS"

_registry: dict[str, Report] = {}


@dataclasses.dataclass(frozen=True)
class Report:
    """A registered report: its name, the function that builds its query, where it is from."""

    name: str
    function: t.Callable[..., t.Any]
    source: str = "analysis.report"

    @property
    def description(self) -> str:
        """The first paragraph of the function's docstring, on one line."""
        doc = inspect.getdoc(self.function) or ""
        return " ".join(doc.split("\n\n", 1)[0].split())

    @property
    def parameters(self) -> list[inspect.Parameter]:
        return [
            p for p in inspect.signature(self.function).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    def describe_parameters(self) -> str:
        """``since: date = 2024-01-01, country: str`` for listings and error messages."""
        hints = _hints(self.function)
        parts = []
        for p in self.parameters:
            text = p.name
            if p.name in hints:
                text += f": {_type_label(hints[p.name])}"
            if p.default is not p.empty:
                text += f" = {p.default}"
            parts.append(text)
        return ", ".join(parts)

    def bind(self, values: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """Check ``values`` against the parameters, converting text by annotation."""
        parameters = {p.name: p for p in self.parameters}
        unknown = sorted(set(values) - set(parameters))
        if unknown:
            raise ParameterError(
                f"Report {self.name!r} has no parameter {', '.join(map(repr, unknown))}; its"
                f" parameters are: {self.describe_parameters() or 'none'}."
            )
        missing = [n for n, p in parameters.items() if p.default is p.empty and n not in values]
        if missing:
            raise ParameterError(
                f"Report {self.name!r} needs {', '.join(map(repr, missing))}: pass"
                f" {' '.join(f'--param {m}=...' for m in missing)} (or {missing[0]}=... in"
                " Python)."
            )
        hints = _hints(self.function)
        return {
            name: convert(value, hints.get(name), name=name, report=self.name)
            for name, value in values.items()
        }

    def build(self, **values: t.Any) -> t.Any:
        """Call the function with checked parameters: a query, or a DataFrame."""
        return self.function(**self.bind(values))


def report(name: str | F | None = None) -> t.Any:
    """Register a function as a named report; use as ``@report`` or ``@report("name")``.

    Without a name, the function's name with ``_`` as ``-`` is used. Registering a name
    again replaces the earlier report (re-running a notebook cell is not an error).
    """

    def register(function: F, report_name: str | None = None) -> F:
        key = report_name or function.__name__.replace("_", "-")
        _check_name(key)
        _registry[key] = Report(key, function, f"{function.__module__}.{function.__qualname__}")
        return function

    if callable(name):
        return register(name)
    return lambda function: register(function, name)


def unregister(name: str) -> None:
    """Remove a report registered with :func:`report` (no error if there is none)."""
    _registry.pop(name, None)


def available(app: Flask | None = None) -> dict[str, Report]:
    """Every report: the app's (``ANALYSIS_REPORTS``) and those registered with :func:`report`.

    A report registered with the decorator wins over an app report of the same name.
    """
    found: dict[str, Report] = {}
    if app is not None:
        found.update(_app_reports(app))
    found.update(_registry)
    return dict(sorted(found.items()))


def get(name: str, app: Flask | None = None) -> Report:
    """The report called ``name``, or :class:`ReportNotFoundError` listing what there is."""
    reports = available(app)
    try:
        return reports[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, list(reports), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(reports) if reports else "none are registered"
    raise ReportNotFoundError(f"No report named {name!r}.{hint} Reports: {listing}.")


def listing(app: Flask | None = None) -> pd.DataFrame:
    """One row per report: name, parameters, description, source."""
    import pandas as pd

    rows = [(r.name, r.describe_parameters(), r.description, r.source) for r in available(app).values()]
    return pd.DataFrame(rows, columns=["report", "parameters", "description", "source"])


def _app_reports(app: Flask) -> dict[str, Report]:
    declared = app.config.get(CONFIG_KEY) or ()
    modules = [declared] if isinstance(declared, str) else list(declared)
    found: dict[str, Report] = {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ReportNotFoundError(
                f"The app's {CONFIG_KEY} names {module_name!r}, which cannot be imported: {e}."
                " Fix the module name in the app's config."
            ) from e
        table = getattr(module, "REPORTS", None)
        if not isinstance(table, t.Mapping):
            raise ReportNotFoundError(
                f"Module {module_name!r} (from the app's {CONFIG_KEY}) has no REPORTS dict;"
                " define REPORTS = {'report-name': function, ...} in it."
            )
        for key, function in table.items():
            _check_name(key)
            found[key] = Report(key, function, module_name)
    return found


def _check_name(name: t.Any) -> None:
    if not isinstance(name, str) or not name or name != name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"Report names are non-empty and without spaces, like 'signups-by-week'; got {name!r}.")


# -- parameter conversion ----------------------------------------------------------------------


def parse_assignment(text: str) -> tuple[str, str]:
    """``"since=2026-01-01"`` -> ``("since", "2026-01-01")``; the value may contain ``=``."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ParameterError(
            f"Bad parameter {text!r}: write NAME=VALUE, as in --param since=2026-01-01."
        )
    return name, value


def convert(value: t.Any, annotation: t.Any, *, name: str, report: str = "") -> t.Any:
    """``value`` as the annotated type; only text is converted, other values pass through."""
    if not isinstance(value, str) or annotation is None:
        return value
    target, optional = _unwrap_optional(annotation)
    if optional and value.strip().lower() in ("", "none", "null"):
        return None
    where = f" of report {report!r}" if report else ""
    try:
        return _from_text(value, target)
    except (ValueError, decimal.InvalidOperation, KeyError):
        raise ParameterError(
            f"Parameter {name!r}{where} must be {_type_label(target, article=True)}; got"
            f" {value!r}{_example(target)}."
        ) from None


def _from_text(value: str, target: t.Any) -> t.Any:
    text = value.strip()
    if target is str or target is t.Any:
        return value
    if target is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on", "y", "t"):
            return True
        if lowered in ("0", "false", "no", "off", "n", "f"):
            return False
        raise ValueError(value)
    if target is int:
        return int(text)
    if target is float:
        return float(text)
    if target is decimal.Decimal:
        return decimal.Decimal(text)
    if target is dt.datetime:
        return dt.datetime.fromisoformat(text)
    if target is dt.date:
        return dt.date.fromisoformat(text)
    if isinstance(target, type) and issubclass(target, enum.Enum):
        for member in target:
            if text in (member.name, str(member.value)):
                return member
        raise ValueError(value)
    return value  # an annotation we do not know: the function gets the text


def _unwrap_optional(annotation: t.Any) -> tuple[t.Any, bool]:
    origin = t.get_origin(annotation)
    if origin is t.Union or origin is getattr(types, "UnionType", None):
        args = [a for a in t.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(t.get_args(annotation))
    return annotation, False


def _hints(function: t.Callable[..., t.Any]) -> dict[str, t.Any]:
    try:
        return t.get_type_hints(function)
    except Exception:
        # Annotations that do not resolve are documentation only; values stay text.
        return {}


def _type_label(annotation: t.Any, *, article: bool = False) -> str:
    target, optional = _unwrap_optional(annotation)
    labels = {
        str: "text", int: "an integer", float: "a number", bool: "true or false",
        decimal.Decimal: "a decimal number", dt.date: "a date", dt.datetime: "a date and time",
    }
    if isinstance(target, type) and issubclass(target, enum.Enum):
        label = "one of " + ", ".join(m.name for m in target)
    else:
        label = labels.get(target, getattr(target, "__name__", str(target)))
    if not article:
        label = label.removeprefix("an ").removeprefix("a ")
    return label + (" or none" if optional else "")


def _example(target: t.Any) -> str:
    examples = {
        dt.date: " (YYYY-MM-DD, e.g. 2026-01-31)",
        dt.datetime: " (ISO 8601, e.g. 2026-01-31T09:00:00+00:00)",
        bool: " (true/false)",
    }
    return examples.get(target, "")
