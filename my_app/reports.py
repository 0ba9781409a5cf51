"""Reports over the app's data, for analysts: ``flask --app my_app report --list``.

Each report is a plain function that takes keyword parameters and returns a ``select()``.
The app does not depend on any reporting tool: ``REPORTS`` below is a plain dict, and the
config key ``ANALYSIS_REPORTS`` (see :mod:`my_app.config`) tells tools where to find it. With
the ``analysis`` toolkit installed::

    flask --app my_app report signups-by-week -o signups.csv --param since=2026-01-01
    wb.report("revenue-by-country", since=datetime.date(2026, 1, 1))      # a DataFrame

Dates are whole UTC days: ``since`` is inclusive, ``until`` exclusive.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from .models import Event, Plan, User

DEFAULT_SINCE = dt.date(2024, 1, 1)


class week_start(FunctionElement[dt.date]):
    """The Monday (UTC) of the week a timestamp falls in, as a date, on every backend."""

    type = sa.Date()
    inherit_cache = True
    name = "week_start"


@compiles(week_start, "postgresql")
def _week_start_postgresql(element: week_start, compiler: t.Any, **kw: t.Any) -> str:
    (column,) = element.clauses
    return f"CAST(date_trunc('week', {compiler.process(column, **kw)} AT TIME ZONE 'UTC') AS DATE)"


@compiles(week_start, "sqlite")
def _week_start_sqlite(element: week_start, compiler: t.Any, **kw: t.Any) -> str:
    # Timestamps are stored as UTC text; 'weekday 1' moves forward to the next Monday.
    (column,) = element.clauses
    return f"date({compiler.process(column, **kw)}, '-6 days', 'weekday 1')"


@compiles(week_start, "mysql")
@compiles(week_start, "mariadb")
def _week_start_mysql(element: week_start, compiler: t.Any, **kw: t.Any) -> str:
    (column,) = element.clauses
    value = compiler.process(column, **kw)
    return f"DATE(DATE_SUB({value}, INTERVAL WEEKDAY({value}) DAY))"


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def _between(column: t.Any, since: dt.date, until: dt.date | None) -> list[t.Any]:
    conditions = [column >= _day_start(since)]
    if until is not None:
        conditions.append(column < _day_start(until))
    return conditions


def _count_if(condition: t.Any) -> t.Any:
    # FILTER (WHERE ...) would be shorter, but MariaDB does not have it.
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _sum_if(condition: t.Any, value: t.Any, type_: sa.types.TypeEngine[t.Any]) -> t.Any:
    total = sa.func.coalesce(sa.func.sum(sa.case((condition, value))), sa.literal(0, type_))
    return sa.type_coerce(total, type_)


def signups_by_week(since: dt.date = DEFAULT_SINCE, until: dt.date | None = None) -> sa.Select[t.Any]:
    """Sign-ups per week (weeks start on Monday, UTC), how many pay, how many are active."""
    week = week_start(User.signed_up_at)
    columns: list[t.Any] = [
        week.label("week"),
        sa.func.count().label("signups"),
        sa.type_coerce(_count_if(User.plan != Plan.free), sa.Integer).label("paying"),
        sa.type_coerce(_count_if(User.active), sa.Integer).label("active"),
    ]
    return (
        sa.select(*columns)
        .where(*_between(User.signed_up_at, since, until))
        .group_by(week)
        .order_by(week)
    )


def revenue_by_country(since: dt.date = DEFAULT_SINCE, until: dt.date | None = None) -> sa.Select[t.Any]:
    """Purchases, refunds and net revenue per country of the buyer, largest revenue first."""
    money = sa.Numeric(12, 2)
    purchase = Event.kind == "purchase"
    refund = Event.kind == "refund"
    purchased = _sum_if(purchase, Event.amount, money)
    refunded = _sum_if(refund, Event.amount, money)
    revenue = sa.type_coerce(purchased - refunded, money)
    return (
        sa.select(
            User.country,
            sa.type_coerce(_count_if(purchase), sa.Integer).label("purchases"),
            sa.type_coerce(_count_if(refund), sa.Integer).label("refunds"),
            purchased.label("purchased"),
            refunded.label("refunded"),
            revenue.label("revenue"),
        )
        .join(Event.user)
        .where(Event.kind.in_(["purchase", "refund"]), *_between(Event.occurred_at, since, until))
        .group_by(User.country)
        .order_by(revenue.desc(), User.country)
    )


def active_users(
    since: dt.date = DEFAULT_SINCE, min_events: int = 1, country: str | None = None
) -> sa.Select[t.Any]:
    """Users with at least ``min_events`` events since ``since``, with their last activity."""
    events = sa.func.count(Event.id)
    columns: tuple[t.Any, ...] = (User.id, User.email, User.name, User.country, User.plan, User.signed_up_at)
    query = (
        sa.select(*columns, events.label("events"), sa.func.max(Event.occurred_at).label("last_seen_at"))
        .join(Event, Event.user_id == User.id)
        .where(Event.occurred_at >= _day_start(since))
        .group_by(*columns)
        .having(events >= min_events)
        .order_by(events.desc(), User.id)
    )
    if country is not None:
        query = query.where(User.country == country.upper())
    return query


#: Report name -> function, for tools that run reports (``ANALYSIS_REPORTS`` points here).
REPORTS = {
    "signups-by-week": signups_by_week,
    "revenue-by-country": revenue_by_country,
    "active-users": active_users,
}
