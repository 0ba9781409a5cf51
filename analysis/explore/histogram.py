"""``wb.histogram(query, column, bins=20)``: bin edges and counts, computed in the database.

Numbers and timestamps: one query for the range, one ``GROUP BY`` of each row's bin number
(``floor((x - min) / width)``, the maximum in the last bin, as numpy's ``histogram`` does).
Timestamps are binned as seconds since the epoch, and the edges given back as timestamps.
Text, Enums and booleans: value counts, the most frequent first.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import pandas as pd  # this module is only imported by Workbench.histogram
import sqlalchemy as sa

from ..connections import AnySession, read_connection
from ..errors import QueryError
from .columns import QueryColumn, query_columns

_EPOCH = dt.datetime(1970, 1, 1)


class Histogram(pd.DataFrame):
    """Bins (``left``, ``right``, ``count``) or values (``value``, ``count``), with :meth:`plot`."""

    _metadata = ["column"]
    column: str

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def plot(self, **kwargs: t.Any) -> t.Any:  # type: ignore[override]
        """Draw the histogram with matplotlib (bars as wide as their bins); returns the Axes."""
        import matplotlib.pyplot as plt

        ax = kwargs.pop("ax", None) or plt.subplots(figsize=kwargs.pop("figsize", (8, 3)))[1]
        title = kwargs.pop("title", self.column)
        if "left" in self.columns:
            left = self["left"].to_numpy()
            widths = self["right"].to_numpy() - left
            ax.bar(left, self["count"].to_numpy(dtype=float), width=widths, align="edge", edgecolor="white", **kwargs)
        else:
            ax.bar([str(v) for v in self["value"]], self["count"].to_numpy(dtype=float), **kwargs)
            ax.tick_params(axis="x", labelrotation=45)
        ax.set_title(title)
        ax.set_ylabel("count")
        return ax


def histogram_query(
    session: AnySession, query: t.Any, column: str, *, bins: int = 20, params: t.Mapping[str, t.Any] | None = None
) -> Histogram:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive number of bins, not {bins!r}.")
    cols = query_columns(session, query, params)
    target = cols.get(column)
    with read_connection(session, sa.select(cols.subquery)) as conn:
        if target.kind in ("number", "time"):
            frame = _binned(conn, cols.subquery, cols.params, target, bins)
        elif target.kind in ("text", "category", "boolean"):
            frame = _value_counts(conn, cols.subquery, cols.params, target)
        else:
            raise QueryError(
                f"Column {column!r} ({target.type_name}) holds neither numbers, times nor text: no histogram."
            )
    result = Histogram(frame)
    result.column = column
    return result


def _as_number(target: QueryColumn, dialect: str) -> sa.ColumnElement[t.Any]:
    """Numbers as they are; timestamps as seconds since the epoch (as the database counts)."""
    if target.kind == "number":
        return sa.cast(target.column, sa.Float)
    if dialect == "sqlite":
        return (sa.func.julianday(target.column) - 2440587.5) * 86400.0
    if dialect == "postgresql":
        return sa.extract("epoch", target.column)
    return sa.func.unix_timestamp(target.column)


def _binned(
    conn: sa.Connection, subquery: sa.Subquery, params: dict[str, t.Any], target: QueryColumn, bins: int
) -> pd.DataFrame:
    value = _as_number(target, conn.dialect.name)
    bounds = [sa.func.min(value, type_=sa.Float), sa.func.max(value, type_=sa.Float)]
    if target.kind == "time":  # the edges from the stored values themselves, not from floats
        bounds += [sa.func.min(target.column), sa.func.max(target.column)]
    found = conn.execute(sa.select(*bounds).select_from(subquery), params).one()
    low, high = found[0], found[1]
    if low is None:
        edges: list[t.Any] = []
        counts: dict[int, int] = {}
    else:
        low, high = float(low), float(high)
        width = (high - low) / bins if high > low else 1.0
        if target.kind == "time":
            first, last = pd.Timestamp(found[2]), pd.Timestamp(found[3])
            step = (last - first) / bins if last > first else pd.Timedelta(seconds=1)
            edges = [first + step * i for i in range(bins)] + [last if last > first else first + step * bins]
        else:
            edges = [low + i * width for i in range(bins)] + [high if high > low else low + width * bins]
        offset = value - sa.bindparam("low", low, type_=sa.Float)
        raw = sa.func.floor(offset / sa.bindparam("width", width, type_=sa.Float))
        index = sa.case((raw >= bins, bins - 1), else_=raw).label("bin")
        statement = sa.select(index, sa.func.count().label("n")).select_from(subquery).where(value.is_not(None))
        rows = conn.execute(statement.group_by(index), params).all()
        counts = {int(b): int(n) for b, n in rows}
    left, right = edges[:-1], edges[1:]
    frame = pd.DataFrame({"left": left, "right": right, "count": [counts.get(i, 0) for i in range(len(left))]})
    frame["count"] = frame["count"].astype("Int64")
    return frame



def _value_counts(
    conn: sa.Connection, subquery: sa.Subquery, params: dict[str, t.Any], target: QueryColumn
) -> pd.DataFrame:
    count = sa.func.count().label("count")
    # An Enum's value as stored (the categories wb.frame() gives), not the Python enum member.
    shown = sa.type_coerce(target.column, sa.String) if target.kind == "category" else target.column
    statement = (
        sa.select(shown, count).select_from(subquery).where(target.column.is_not(None))
        .group_by(target.column).order_by(count.desc(), target.column)
    )
    rows = conn.execute(statement, params).all()
    frame = pd.DataFrame({"value": [r[0] for r in rows], "count": [r[1] for r in rows]})
    frame["count"] = frame["count"].astype("Int64")
    return frame
