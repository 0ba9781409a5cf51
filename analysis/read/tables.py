"""Converted columns -> one :class:`pyarrow.Table` in the canonical Arrow types, and Polars.

The read path converts every batch into canonical Arrow columns (:mod:`analysis.read.convert`);
``frame()`` turns them into pandas dtypes, :func:`assemble_table` keeps them as Arrow, and
:func:`to_polars` hands that table to Polars. The mapping (also in the README):

==========================  ==================================  =================================
SQLAlchemy type             Arrow (``wb.arrow``)                Polars (``wb.polars``)
==========================  ==================================  =================================
Integer, BigInteger...      ``int64``                           ``Int64``
Boolean                     ``bool``                            ``Boolean``
Float, Double               ``double``                          ``Float64``
Numeric(p, s)               ``decimal128(p, s)``                ``Decimal(p, s)``
DateTime                    ``timestamp[us]``                   ``Datetime("us")``
DateTime(timezone=True)     ``timestamp[us, tz=UTC]``           ``Datetime("us", "UTC")``
Date                        ``date32``                          ``Date``
Time                        ``time64[us]``                      ``Time``
Interval                    ``duration[us]``                    ``Duration("us")``
String, Text, Unicode       ``string``                          ``String``
Enum                        ``dictionary<int32, string>``,      ``Enum`` (declared order)
                            the values in declared order
JSON                        ``extension<arrow.json>`` (text)    ``String`` (JSON text)
LargeBinary                 ``binary``                          ``Binary``
Uuid                        ``extension<arrow.uuid>``           ``String`` (``8-4-4-4-12`` hex)
TypeDecorator (own          typed from the values the ORM       same
processing), other types    returns; text where Arrow has none
raw SQL                     inferred from the driver's values   same
==========================  ==================================  =================================
"""

from __future__ import annotations

import json
import typing as t

from . import columns as columns_
from . import convert

if t.TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from .columns import Column
    from .plans import ColumnPlan


def assemble_table(names: list[str], chunks: list[list[Column]], plans: list[ColumnPlan] | None) -> pa.Table:
    """One Arrow table from converted chunks, freeing each column's chunks as it goes."""
    import pyarrow as pa

    arrays = []
    for i in range(len(names)):
        parts, chunks[i] = chunks[i], []
        plan = plans[i] if plans is not None else None
        arrays.append(arrow_column(columns_._concat(parts), plan))
        del parts
    return pa.Table.from_arrays(arrays, names=list(names))


def empty_table(names: list[str], plans: list[ColumnPlan]) -> pa.Table:
    """The columns the plans give, with no rows: a result's schema known without reading it."""
    return assemble_table(names, empty_columns(plans), plans)


def empty_columns(plans: list[ColumnPlan]) -> list[list[Column]]:
    """One empty converted column per plan, as the read path would convert a result of no rows
    (for :func:`assemble_table` or :func:`analysis.read.columns.assemble`)."""
    import numpy as np

    empty: list[list[Column]] = []
    for plan in plans:
        canonical = convert._canonical_type(plan)
        if plan.kind == "enum":
            column: Column = convert._categorical(_empty_strings(), plan)
        elif canonical is not None:
            column = _empty(canonical)
        else:
            column = np.empty(0, dtype=object)
        empty.append([column])
    return empty


def arrow_column(column: Column, plan: ColumnPlan | None) -> pa.ChunkedArray:
    """A converted column as Arrow: Arrow columns stay as they are; object columns (JSON,
    values processed by SQLAlchemy) are typed from their values."""
    import numpy as np
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        return column
    if isinstance(column, pa.Array):
        return pa.chunked_array([column])
    assert isinstance(column, np.ndarray)
    values = list(column)
    if plan is not None and plan.kind == "json":
        text = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        return pa.chunked_array([pa.array(text, _json_type())])
    try:
        return pa.chunked_array([pa.array(values, from_pandas=True)])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        # Values Arrow has no type for (custom objects, mixed types): their text.
        return pa.chunked_array([pa.array([None if v is None else str(v) for v in values], pa.string())])


def to_polars(table: pa.Table) -> pl.DataFrame:
    """A Polars DataFrame of ``table``: Enums as ``pl.Enum`` in declared order, JSON as text,
    UUIDs as their canonical text."""
    import polars as pl
    import pyarrow as pa

    columns = []
    for i in range(table.num_columns):
        column = table.column(i)
        if isinstance(column.type, pa.BaseExtensionType):
            column = _extension_as_text(column)
        columns.append(column)
    frame = pl.from_arrow(pa.Table.from_arrays(columns, names=table.column_names), rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    # An Enum column's dictionary is the Enum's values in declared order (convert._categorical).
    enums = [
        pl.col(name).cast(pl.Enum(_dictionary(table.column(name))))
        for name in table.column_names
        if pa.types.is_dictionary(table.schema.field(name).type)
    ]
    return frame.with_columns(enums) if enums else frame


def _dictionary(column: pa.ChunkedArray) -> list[str]:
    import pyarrow as pa

    if column.num_chunks == 0:
        return []
    values = column.chunk(0).dictionary
    return [str(v) for v in (values.cast(pa.string()) if not pa.types.is_string(values.type) else values).to_pylist()]


def _extension_as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    import uuid

    import pyarrow as pa

    name = getattr(column.type, "extension_name", "")
    storage = pa.chunked_array([chunk.storage for chunk in column.chunks], type=column.type.storage_type)
    if name == "arrow.uuid":
        return pa.chunked_array(
            [pa.array([None if v is None else str(uuid.UUID(bytes=v)) for v in storage.to_pylist()], pa.string())]
        )
    return storage  # JSON: its text


def _json_type() -> pa.DataType:
    import pyarrow as pa

    json_ = getattr(pa, "json_", None)  # pyarrow 19+
    return json_(pa.string()) if json_ is not None else pa.string()


def _empty(type_: pa.DataType) -> pa.Array:
    import pyarrow as pa

    return pa.array([], type=type_)


def _empty_strings() -> pa.ChunkedArray:
    import pyarrow as pa

    return pa.chunked_array([pa.array([], pa.string())])
