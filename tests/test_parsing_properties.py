"""Property-based tests for the strings users type: app specs and database URLs."""

from __future__ import annotations

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analysis.errors import AnalysisError
from analysis.locate import build_app
from my_app.config import ConfigError, normalize_database_url

pytestmark = pytest.mark.backends("sqlite")

# Module-ish names and call-ish suffixes, plus arbitrary text, so the parser sees both.
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
specs = st.one_of(
    st.text(max_size=40),
    st.builds(lambda m, a: f"{m}:{a}", identifiers, identifiers),
    st.builds(lambda m, a, arg: f"{m}:{a}({arg})", identifiers, identifiers, st.text(max_size=10)),
    st.builds(lambda a, arg: f"my_app:{a}({arg!r})", identifiers, st.text(max_size=10)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs)
def test_any_app_spec_builds_an_app_or_raises_a_clear_error(spec, monkeypatch):
    monkeypatch.setenv("MY_APP_SQLALCHEMY_DATABASE_URI", "sqlite://")
    try:
        app = build_app(spec)
    except AnalysisError as error:
        message = str(error)
        assert message and "\n" not in message.strip()
    else:
        assert isinstance(app, Flask)


@settings(max_examples=200, deadline=None)
@given(
    url=st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, rest: f"{scheme}://{rest}",
            st.sampled_from(["postgres", "postgresql", "mysql", "mariadb", "sqlite", "oracle", "mssql+pyodbc", "x"]),
            st.text(max_size=40),
        ),
    )
)
@example(url="0://:")  # a port that is not a number: once a bare ValueError from SQLAlchemy
@example(url="postgresql://u@h:99999999999/d")
def test_any_database_url_is_normalised_or_refused_in_one_line(url):
    try:
        normalized = normalize_database_url(url)
    except ConfigError as error:
        assert "\n" not in error.format_message()
        assert "Traceback" not in error.format_message()
    else:
        assert "://" in normalized or normalized.startswith("sqlite")


literals = st.one_of(st.text(max_size=10), st.sampled_from(["--writable", " --x ", "a b", ")"]), st.integers(), st.none())
factory_calls = st.builds(
    lambda m, f, args: f"{m}:{f}({', '.join(map(repr, args))})", identifiers, identifiers, st.lists(literals, max_size=3)
)


@settings(max_examples=150, deadline=None)
@given(spec=st.one_of(identifiers, factory_calls), flag=st.sampled_from(["", "--writable", "--read-only"]), quote=st.sampled_from(["", '"', "'"]))
def test_connect_magic_reads_the_app_as_flask_app_does_quoted_or_not(spec, flag, quote):
    from IPython.core.error import UsageError

    from analysis.ipython import parse_connect_line

    if quote and quote in spec:
        return  # a spec holding the quote cannot be quoted with it, in a shell either
    line = f"{flag} {quote}{spec}{quote}".strip()
    mode = {"": None, "--writable": True, "--read-only": False}[flag]
    try:
        parsed = parse_connect_line(line)
    except UsageError as error:
        raise AssertionError(f"{line!r} refused: {error}") from error
    else:
        assert parsed == (spec, mode, None)
        assert parse_connect_line(f"{quote}{spec}{quote} {flag} --echo".strip()) == (spec, mode, True)
