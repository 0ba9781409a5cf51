"""Named reports: the registry, parameters given as text, and my_app's reports on every backend."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import typing as t

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis
from analysis import reports
from analysis.errors import ParameterError, ReportNotFoundError
from my_app.models import Event, User


@pytest.fixture
def registered() -> t.Iterator[list[str]]:
    """Names registered by a test, removed afterwards (the registry is process-wide)."""
    names: list[str] = []
    yield names
    for name in names:
        reports.unregister(name)


class Size(enum.Enum):
    small = "s"
    large = "l"


def test_decorator_registers_by_name_or_function_name(registered):
    @analysis.report
    def users_by_country(min_users: int = 1):
        """Countries with at least ``min_users`` users.

        Second paragraph, not part of the description.
        """
        return sa.select(User.country, sa.func.count().label("users")).group_by(User.country)

    @analysis.report("big-spenders")
    def spenders(since: dt.date, size: Size | None = None) -> str:
        return "SELECT 1"

    registered += ["users-by-country", "big-spenders"]
    found = reports.available()
    assert found["users-by-country"].function is users_by_country
    assert found["users-by-country"].description == "Countries with at least ``min_users`` users."
    assert found["big-spenders"].describe_parameters() == "since: date, size: one of small, large or none = None"
    assert users_by_country.__name__ == "users_by_country"  # the decorator returns the function


def test_parameters_from_text_are_converted_by_annotation(registered):
    seen = {}

    @analysis.report("typed")
    def typed(day: dt.date, at: dt.datetime | None = None, n: int = 0, x: float = 0.0,
              exact: decimal.Decimal = decimal.Decimal(0), flag: bool = False, size: Size = Size.small,
              text: str = ""):
        seen.update(day=day, at=at, n=n, x=x, exact=exact, flag=flag, size=size, text=text)
        return "SELECT 1"

    registered.append("typed")
    reports.get("typed").build(
        day="2026-01-31", at="2026-01-31T09:00:00+00:00", n="-3", x="1e3", exact="12.50",
        flag="yes", size="l", text="=literal",
    )
    assert seen == dict(
        day=dt.date(2026, 1, 31), at=dt.datetime(2026, 1, 31, 9, tzinfo=dt.timezone.utc), n=-3, x=1000.0,
        exact=decimal.Decimal("12.50"), flag=True, size=Size.large, text="=literal",
    )
    reports.get("typed").build(day=dt.date(2020, 1, 1), at="none")  # Python values pass through
    assert seen["day"] == dt.date(2020, 1, 1) and seen["at"] is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "Report 'typed2' needs 'day': pass --param day=..."),
        ({"day": "31/01/2026"}, "Parameter 'day' of report 'typed2' must be a date; got '31/01/2026' (YYYY-MM-DD"),
        ({"day": "2026-01-01", "n": "1.5"}, "must be an integer; got '1.5'"),
        ({"day": "2026-01-01", "size": "medium"}, "must be one of small, large; got 'medium'"),
        ({"day": "2026-01-01", "colour": "red"}, "has no parameter 'colour'; its parameters are: day: date, n: integer = 0"),
    ],
)
def test_bad_parameters_say_what_is_expected(registered, values, message):
    @analysis.report("typed2")
    def typed2(day: dt.date, n: int = 0, size: Size = Size.small):
        return "SELECT 1"

    registered.append("typed2")
    with pytest.raises(ParameterError) as info:
        reports.get("typed2").build(**values)
    assert message in str(info.value)


def test_unknown_report_suggests_the_closest_name(registered):
    @analysis.report("signups-by-month")
    def monthly():
        return "SELECT 1"

    registered.append("signups-by-month")
    with pytest.raises(ReportNotFoundError, match=r"No report named 'signup-by-month'\. Did you mean 'signups-by-month'\?"):
        reports.get("signup-by-month")


@settings(max_examples=50, deadline=None)
@given(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True),
    st.text(max_size=30),
)
def test_param_assignments_split_at_the_first_equals_sign(name, value):
    assert reports.parse_assignment(f"{name}={value}") == (name, value)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=30))
def test_param_text_without_a_name_is_refused_with_the_syntax(text):
    name, sep, _ = text.partition("=")
    if sep and name.strip().isidentifier():
        return
    with pytest.raises(ParameterError, match="write NAME=VALUE"):
        reports.parse_assignment(text)


@settings(max_examples=50, deadline=None)
@given(st.integers(), st.dates(), st.booleans())
def test_text_conversion_round_trips(n, day, flag):
    assert reports.convert(str(n), int, name="n") == n
    assert reports.convert(day.isoformat(), dt.date, name="d") == day
    assert reports.convert(str(flag).lower(), bool, name="b") is flag


def test_app_declared_reports_need_a_reports_dict(app):
    app.config["ANALYSIS_REPORTS"] = "my_app.models"
    with pytest.raises(ReportNotFoundError, match="has no REPORTS dict"):
        reports.available(app)
    app.config["ANALYSIS_REPORTS"] = ["my_app.no_such_module"]
    with pytest.raises(ReportNotFoundError, match="cannot be imported"):
        reports.available(app)


# -- my_app's reports, checked against pandas on the raw rows -----------------------------------


@pytest.fixture
def wb(seeded_app) -> t.Iterator[analysis.Workbench]:
    workbench = analysis.connect(seeded_app)
    yield workbench
    workbench.close()


def test_signups_by_week_counts_every_signup_once(wb):
    users = wb.frame(User)
    weeks = wb.report("signups-by-week")
    assert weeks["signups"].sum() == len(users)
    days = pd.to_datetime(users["signed_up_at"]).dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    mondays = (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).dt.date
    expected = mondays.value_counts().sort_index()
    assert [w for w in weeks["week"].tolist()] == list(expected.index)
    assert weeks["signups"].tolist() == expected.tolist()
    assert (weeks["paying"] <= weeks["signups"]).all() and (weeks["active"] <= weeks["signups"]).all()
    later = wb.report("signups-by-week", since="2026-01-01")
    assert later["signups"].sum() == (users["signed_up_at"] >= pd.Timestamp("2026-01-01", tz="UTC")).sum()


def test_revenue_by_country_matches_the_events(wb):
    events = wb.frame(sa.select(Event.kind, Event.amount, User.country).join(Event.user))
    money = events[events["kind"].isin(["purchase", "refund"])]
    result = wb.report("revenue-by-country").set_index("country")
    for country, rows in money.groupby("country"):
        bought = sum((a for a in rows.loc[rows["kind"] == "purchase", "amount"] if pd.notna(a)), decimal.Decimal(0))
        refunded = sum((a for a in rows.loc[rows["kind"] == "refund", "amount"] if pd.notna(a)), decimal.Decimal(0))
        assert result.loc[country, "purchased"] == bought
        assert result.loc[country, "revenue"] == bought - refunded
    assert result["revenue"].tolist() == sorted(result["revenue"].tolist(), reverse=True)


def test_active_users_filters_by_events_and_country(wb):
    everyone = wb.report("active-users")
    assert everyone["events"].sum() == len(wb.frame(Event))
    busy = wb.report("active-users", min_events=6)
    assert (busy["events"] >= 6).all() and set(busy["id"]) <= set(everyone["id"])
    country = everyone["country"].iloc[0]
    local = wb.report("active-users", country=country.lower())
    assert set(local["country"]) == {country}
    assert str(everyone["last_seen_at"].dtype) == "datetime64[us, UTC]"
