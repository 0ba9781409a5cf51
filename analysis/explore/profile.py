"""``wb.profile(query)``: one row per column, computed in the database.

Three kinds of aggregate query, none of which sends rows to Python: one for every column's
count, NULLs, distinct values, minimum, maximum and mean; one for the standard deviations
(the sum of squared distances from the mean just computed: accurate where
``avg(x*x) - avg(x)^2`` is not, and SQLite has no ``stddev``); and one ``GROUP BY`` per column for
its most frequent value. Text minimum and maximum compare by code point (PostgreSQL's ``"C"``
collation), as Python and pandas do.
"""

from __future__ import annotations

import html
import math
import typing as t

import pandas as pd  # this module is only imported by Workbench.profile
import sqlalchemy as sa

from ..connections import AnySession, read_connection
from .columns import QueryColumn, QueryColumns, query_columns

COLUMNS = ["type", "count", "nulls", "distinct", "min", "max", "mean", "std", "top", "top_freq"]


class Profile(pd.DataFrame):
    """A DataFrame whose notebook display adds a bar for each column's share of NULLs."""

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame  # anything derived from a profile is an ordinary DataFrame

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(name)}</th>" for name in ["column", *COLUMNS[:3], "NULL share", *COLUMNS[3:]])
        rows = []
        for name, row in self.iterrows():
            total = int(row["count"]) + int(row["nulls"])
            share = int(row["nulls"]) / total if total else 0.0
            bar = (
                f'<div title="{share:.1%} NULL" style="display:inline-block;width:80px;height:9px;'
                f'background:#e0e0e0;vertical-align:middle"><div style="width:{share * 100:.1f}%;height:100%;'
                f'background:#d62728"></div></div> {share:.0%}'
            )
            cells = [esc(str(name)), *(esc(_shown(row[c])) for c in COLUMNS[:3]), bar]
            cells += [esc(_shown(row[c])) for c in COLUMNS[3:]]
            rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        return f'<table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _shown(value: t.Any) -> str:
    return "" if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else str(value)


def profile_query(session: AnySession, query: t.Any, params: t.Mapping[str, t.Any] | None = None) -> Profile:
    cols = query_columns(session, query, params)
    with read_connection(session, sa.select(cols.subquery)) as conn:
        dialect = conn.dialect.name
        stats = _first_pass(conn, cols, dialect)
        _standard_deviations(conn, cols, stats)
        for column in cols.columns:
            if column.kind != "other":
                found = _top(conn, cols, column)
                if found["distinct"] == "count":  # a primary key: all distinct
                    found = {"distinct": stats[column.name]["count"], "top": stats[column.name]["min"], "top_freq": 1}
                stats[column.name].update(found)
    frame = pd.DataFrame([{"type": c.type_name, **stats[c.name]} for c in cols.columns], columns=COLUMNS)
    frame.index = pd.Index([c.name for c in cols.columns], name="column")
    for name in ("count", "nulls", "distinct", "top_freq"):
        frame[name] = frame[name].astype("Int64")
    for name in ("mean", "std"):
        frame[name] = frame[name].astype("Float64")
    return Profile(frame)


def _value(column: QueryColumn, dialect: str) -> sa.ColumnElement[t.Any]:
    """The column as aggregated: booleans as 0/1, text in code point order."""
    if column.kind == "boolean":
        return sa.cast(column.column, sa.Integer)
    if column.kind == "text" and dialect == "postgresql":
        return sa.collate(column.column, "C")
    return column.column


def _first_pass(conn: sa.Connection, cols: QueryColumns, dialect: str) -> dict[str, dict[str, t.Any]]:
    selected: list[sa.ColumnElement[t.Any]] = [sa.func.count().label("rows")]
    for i, column in enumerate(cols.columns):
        value = _value(column, dialect)
        selected.append(sa.func.count(column.column).label(f"n{i}"))
        if column.kind in ("number", "boolean", "time", "text"):
            selected += [sa.func.min(value).label(f"lo{i}"), sa.func.max(value).label(f"hi{i}")]
        if column.kind in ("number", "boolean"):
            selected.append(sa.func.avg(value, type_=sa.Float).label(f"m{i}"))
    row = conn.execute(sa.select(*selected).select_from(cols.subquery), cols.params).one()._mapping
    stats: dict[str, dict[str, t.Any]] = {}
    for i, column in enumerate(cols.columns):
        count = row[f"n{i}"]
        low, high = row.get(f"lo{i}"), row.get(f"hi{i}")
        if column.kind == "boolean" and low is not None:
            low, high = bool(low), bool(high)
        mean = row.get(f"m{i}")
        stats[column.name] = {
            "count": count,
            "nulls": row["rows"] - count,
            "distinct": None,
            "min": low,
            "max": high,
            "mean": float(mean) if mean is not None else None,
            "std": None,
            "top": None,
            "top_freq": None,
        }
    return stats


def _standard_deviations(conn: sa.Connection, cols: QueryColumns, stats: dict[str, dict[str, t.Any]]) -> None:
    selected = []
    for i, column in enumerate(cols.columns):
        mean = stats[column.name]["mean"]
        if mean is not None and stats[column.name]["count"] > 1:
            distance = _value(column, conn.dialect.name) - sa.bindparam(f"mean{i}", mean, type_=sa.Float)
            selected.append(sa.func.sum(distance * distance, type_=sa.Float).label(f"s{i}"))
    if not selected:
        return
    params = {**cols.params, **{f"mean{i}": stats[c.name]["mean"] for i, c in enumerate(cols.columns)}}
    row = conn.execute(sa.select(*selected).select_from(cols.subquery), params).one()._mapping
    for i, column in enumerate(cols.columns):
        if f"s{i}" in row:
            squares = float(row[f"s{i}"])
            stats[column.name]["std"] = math.sqrt(squares / (stats[column.name]["count"] - 1))


def _top(conn: sa.Connection, cols: QueryColumns, column: QueryColumn) -> dict[str, t.Any]:
    """Distinct values, the most frequent one and its frequency, from one ``GROUP BY``.

    (One query per column: ``count(DISTINCT ...)`` for several columns in one query is far
    slower on SQLite than a grouping each.) A primary key needs no query: every value is
    distinct, so the smallest is as frequent as any.
    """
    if column.primary_key:
        return {"distinct": "count"}  # the caller fills it in from its first pass
    # An Enum's value as stored (the categories wb.frame() gives), not the Python enum member.
    shown = sa.type_coerce(column.column, sa.String) if column.kind == "category" else column.column
    frequency = sa.func.count().label("frequency")
    groups = (
        sa.select(shown.label("value"), frequency)
        .select_from(cols.subquery)
        .where(column.column.is_not(None))
        .group_by(column.column)
        .subquery("groups")
    )
    statement = (
        sa.select(groups.c.value, groups.c.frequency, sa.func.count().over().label("distinct"))
        .order_by(groups.c.frequency.desc(), groups.c.value)
        .limit(1)
    )
    row = conn.execute(statement, cols.params).first()
    if row is None:
        return {"distinct": 0, "top": None, "top_freq": None}
    return {"distinct": row[2], "top": row[0], "top_freq": row[1]}
