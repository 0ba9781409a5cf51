"""The columns of a query, as a subquery to aggregate over, each with the kind of data it holds.

Profiles and histograms run aggregate queries over ``SELECT ... FROM (<the query>) AS q``, so
any query :meth:`Workbench.frame` accepts works and no row leaves the database. A column's
kind decides which aggregates make sense: ``number`` (integers, floats, decimals), ``boolean``,
``time`` (dates and timestamps), ``text`` (strings), ``category`` (Enums) or ``other`` (JSON,
binary: counted only). Raw SQL has no declared types: its kinds come from a sample of rows.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa

from ..connections import AnySession, read_connection
from ..read import resolve_statement, rows_frame

Kind = t.Literal["number", "boolean", "time", "text", "category", "other"]
#: Rows of raw SQL read to tell its columns' kinds.
SAMPLE_ROWS = 1000


@dataclasses.dataclass
class QueryColumn:
    name: str
    column: sa.ColumnElement[t.Any]
    kind: Kind
    type_name: str
    primary_key: bool = False


@dataclasses.dataclass
class QueryColumns:
    """The query as a subquery, its parameters and its columns, in order."""

    subquery: sa.Subquery
    params: dict[str, t.Any]
    columns: list[QueryColumn]

    def get(self, name: str) -> QueryColumn:
        for column in self.columns:
            if column.name == name:
                return column
        from ..errors import QueryError

        names = ", ".join(c.name for c in self.columns)
        raise QueryError(f"No column named {name!r}; the query's columns are {names}.")


def query_columns(session: AnySession, query: t.Any, params: t.Mapping[str, t.Any] | None) -> QueryColumns:
    resolved = resolve_statement(query, params)
    if resolved.is_text:
        text = t.cast(sa.TextClause, resolved.statement)
        names, kinds, type_names = _sample_kinds(session, text, resolved.params)
        subquery = text.columns(*(sa.column(name) for name in names)).subquery("q")
    else:
        statement = resolved.statement
        subquery = t.cast(sa.Select[t.Any], statement).subquery("q")
        names = resolved.names
        kinds = [kind_of(type_) for type_ in resolved.types]
        type_names = [_type_name(type_) for type_ in resolved.types]
    columns = [
        QueryColumn(name, column, kind, type_name, primary_key=_is_primary_key(column, resolved.statement))
        for name, column, kind, type_name in zip(names, subquery.c, kinds, type_names, strict=True)
    ]
    return QueryColumns(subquery, resolved.params, columns)


def _is_primary_key(column: sa.ColumnElement[t.Any], statement: t.Any) -> bool:
    """A table's whole (single-column) primary key, selected as is from that table alone: its
    values are unique and never NULL. (A join or a UNION can repeat a row of the table.)"""
    if not isinstance(statement, sa.Select):
        return False
    froms = statement.get_final_froms()
    base = next(iter(getattr(column, "base_columns", ())), None)
    if len(froms) != 1 or not isinstance(base, sa.Column) or not isinstance(froms[0], sa.Table):
        return False
    if not froms[0].is_derived_from(base.table):  # (the ORM's select has an annotated copy)
        return False
    return bool(base.primary_key) and len(base.table.primary_key.columns) == 1


def kind_of(type_: sa.types.TypeEngine[t.Any] | None) -> Kind:
    if type_ is None:
        return "other"
    if isinstance(type_, sa.types.TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, sa.Boolean):
        return "boolean"
    if isinstance(type_, sa.Enum):
        return "category"
    if isinstance(type_, (sa.Integer, sa.Numeric, sa.Float)):  # Float is no Numeric in SQLAlchemy 2.1
        return "number"
    if isinstance(type_, (sa.DateTime, sa.Date)):
        return "time"
    if isinstance(type_, sa.String):
        return "text"
    return "other"


def _type_name(type_: sa.types.TypeEngine[t.Any] | None) -> str:
    if type_ is None:
        return "?"
    try:
        return str(type_.compile())
    except sa.exc.CompileError:
        return type(type_).__name__


def _sample_kinds(
    session: AnySession, text: sa.TextClause, params: dict[str, t.Any]
) -> tuple[list[str], list[Kind], list[str]]:
    with read_connection(session, text) as conn:
        result = conn.execute(text, params)
        try:
            names = [str(k) for k in result.keys()]
            rows = result.fetchmany(SAMPLE_ROWS)
        finally:
            result.close()
    sample = rows_frame(names, [tuple(r) for r in rows])
    kinds = [_sampled_kind(sample[name]) for name in names]
    return names, kinds, [str(sample[name].dtype) for name in names]


def _sampled_kind(values: t.Any) -> Kind:
    """The kind of a sampled column, from its dtype or (for objects) its first value."""
    import datetime as dt
    import decimal

    dtype = values.dtype
    if dtype.kind == "b" or str(dtype) == "boolean":
        return "boolean"
    if dtype.kind in "iuf" or str(dtype).startswith(("Int", "UInt", "Float")):
        return "number"
    if dtype.kind == "M":
        return "time"
    if str(dtype) == "string":
        return "text"
    present = values.dropna()
    first = present.iloc[0] if len(present) else None
    if isinstance(first, bool):
        return "boolean"
    if isinstance(first, (int, float, decimal.Decimal)):
        return "number"
    if isinstance(first, (dt.date, dt.datetime)):
        return "time"
    if isinstance(first, str):
        return "text"
    return "other"
