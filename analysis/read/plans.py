"""The dtype mapping: SQLAlchemy column types -> Arrow columns -> pandas dtypes.

Each column's SQLAlchemy type decides a :class:`ColumnPlan`; :mod:`analysis.read.convert`
turns the driver's raw column into the plan's canonical Arrow column, and :func:`to_series`
picks the pandas dtype for the chosen ``dtype_backend``.

The table (also in the README):

==========================  ==========================  ===============================
SQLAlchemy type             ``"numpy_nullable"``        ``"pyarrow"``
==========================  ==========================  ===============================
Integer, BigInteger...      ``Int64``                   ``int64[pyarrow]``
Boolean                     ``boolean``                 ``bool[pyarrow]``
Float, Double               ``Float64``                 ``double[pyarrow]``
Numeric (exact)             ``decimal128(p, s)[pyarrow]`` (both)
Numeric, coerce_float=True  ``Float64``                 ``double[pyarrow]``
DateTime                    ``datetime64[us]``          ``timestamp[us][pyarrow]``
DateTime(timezone=True)     ``datetime64[us, UTC]``     ``timestamp[us, tz=UTC][pyarrow]``
Date                        ``date32[day][pyarrow]`` (both)
Time                        ``time64[us][pyarrow]`` (both)
Interval                    ``timedelta64[us]``         ``duration[us][pyarrow]``
String, Text, Unicode       ``string[pyarrow]``         ``string[pyarrow]`` (ArrowDtype)
Enum                        ``category`` with the Enum's values as categories (both)
JSON                        ``object`` (dicts, lists...) (both)
LargeBinary                 ``object`` (bytes)          ``binary[pyarrow]``
other / raw SQL             inferred from the values the driver returns
==========================  ==========================  ===============================
"""

from __future__ import annotations

import dataclasses
import functools
import typing as t

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, oracle, postgresql

if t.TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

DtypeBackend = t.Literal["numpy_nullable", "pyarrow"]
DTYPE_BACKENDS: tuple[DtypeBackend, ...] = ("numpy_nullable", "pyarrow")
#: What a column becomes; ``python`` runs SQLAlchemy's own processing value by value, ``raw``
#: (raw SQL) keeps what the driver returns.
ColumnKind = t.Literal[
    "int", "bool", "float", "decimal", "date", "datetime", "time", "interval", "string", "enum", "json",
    "binary", "python", "raw",
]


@dataclasses.dataclass(frozen=True)
class ColumnPlan:
    """What one column should become, decided from its SQLAlchemy type."""

    name: str
    kind: ColumnKind
    sa_type: sa.types.TypeEngine[t.Any] | None = None
    timezone: bool = False
    precision: int | None = None
    scale: int | None = None
    categories: tuple[str, ...] = ()
    #: SQLAlchemy's own result processing, when a TypeDecorator adds some of its own.
    processor: t.Callable[[t.Any], t.Any] | None = None


def plan_columns(
    names: t.Sequence[str],
    types: t.Sequence[sa.types.TypeEngine[t.Any] | None],
    dialect: sa.Dialect,
    *,
    coerce_float: bool = False,
) -> list[ColumnPlan]:
    return [plan_column(n, ty, dialect, coerce_float=coerce_float) for n, ty in zip(names, types, strict=True)]


def plan_column(
    name: str, type_: sa.types.TypeEngine[t.Any] | None, dialect: sa.Dialect, *, coerce_float: bool = False
) -> ColumnPlan:
    if type_ is None:
        return ColumnPlan(name, "raw")
    processor = None
    base = type_
    # Interval is a TypeDecorator over DateTime where the backend has no interval type.
    while isinstance(base, sa.types.TypeDecorator) and not isinstance(base, _INTERVALS):
        cls = type(base)
        if (
            cls.process_result_value is not sa.types.TypeDecorator.process_result_value
            or cls.result_processor is not sa.types.TypeDecorator.result_processor
        ):
            processor = _result_processor(type_, dialect)
        base = base.impl_instance
    plan = functools.partial(ColumnPlan, name, sa_type=type_, processor=processor)
    if isinstance(base, _INTERVALS):
        # Emulated (SQLite, MariaDB): the epoch plus the interval, checked against SQLAlchemy.
        emulated = isinstance(type_.dialect_impl(dialect), sa.types.TypeDecorator)
        return plan("interval", processor=_result_processor(type_, dialect) if emulated else processor)
    if isinstance(base, sa.Enum):
        return plan("enum", categories=tuple(base.enums))
    if isinstance(base, sa.Boolean):
        return plan("bool")
    if isinstance(base, sa.Integer):
        return plan("int")
    if isinstance(base, sa.Float) or isinstance(base, sa.Numeric) and (coerce_float or not base.asdecimal):
        return plan("float")
    if isinstance(base, sa.Numeric):
        scale = base.scale if base.scale is not None else getattr(base, "decimal_return_scale", None)
        return plan("decimal", precision=base.precision, scale=scale)
    if isinstance(base, sa.DateTime):
        return plan("datetime", timezone=bool(base.timezone))
    if isinstance(base, sa.Date):
        return plan("date")
    if isinstance(base, sa.Time):
        return plan("time")
    if isinstance(base, sa.JSON):
        return plan("json")
    if isinstance(base, sa.String):
        return plan("string")
    if isinstance(base, _BINARIES):
        return plan("binary")
    if isinstance(base, sa.Uuid) and base.as_uuid and processor is None:
        # The Arrow route reads UUIDs cast to text (PostgreSQL), which the DBAPI driver would
        # have returned as uuid.UUID already: both routes give uuid.UUID.
        return plan("python", processor=_as_uuid(_result_processor(type_, dialect)))
    # Anything else (UUID, intervals, arrays, custom types): SQLAlchemy's own processing,
    # value by value, which is slow but exactly what the ORM would give.
    return plan("python", processor=_result_processor(type_, dialect))


def _as_uuid(processor: t.Callable[[t.Any], t.Any]) -> t.Callable[[t.Any], t.Any]:
    import uuid

    def process(value: t.Any) -> t.Any:
        value = processor(value)
        return uuid.UUID(value) if isinstance(value, str) else value

    return process


#: Binary types: SQLAlchemy's, and MySQL's blobs that do not derive from LargeBinary.
_BINARIES = (sa.LargeBinary, sa.types.BINARY, sa.types.VARBINARY, mysql.TINYBLOB, mysql.MEDIUMBLOB, mysql.LONGBLOB)
#: SQLAlchemy's Interval and the dialects' native INTERVAL types.
_INTERVALS = (sa.Interval, postgresql.INTERVAL, oracle.INTERVAL)


def _result_processor(type_: sa.types.TypeEngine[t.Any], dialect: sa.Dialect) -> t.Callable[[t.Any], t.Any]:
    """What SQLAlchemy does to each value of this type on this dialect (the dialect's own
    type's processing, then a TypeDecorator's)."""
    return type_.dialect_impl(dialect).result_processor(dialect, None) or (lambda value: value)


def sql_cast(plan: ColumnPlan, dialect_name: str, *, everything: bool = False) -> sa.types.TypeEngine[t.Any] | None:
    """The SQL type to CAST a column to, so an Arrow-native driver reads it with one type.

    ADBC's SQLite driver infers each column's type from the values of its first batch, and
    SQLite keeps values of any type in any column: a NUMERIC column stores 5.00 as an integer
    and 5.25 as a real, so numerics are always cast to REAL. Casting every column (``everything``)
    also covers columns holding values of another storage class than declared, at a cost of
    about half the read time, so it is the second attempt. On PostgreSQL only types the
    driver does not know (enums, UUIDs) are cast to text.
    """
    if dialect_name == "sqlite":
        if plan.kind == "decimal" or plan.kind == "float" and isinstance(_base(plan.sa_type), sa.Numeric):
            return sa.Float()
        if not everything:
            return None
        casts: dict[str, sa.types.TypeEngine[t.Any]] = {
            "int": sa.Integer(), "bool": sa.Integer(), "float": sa.Float(),
            "date": sa.Text(), "datetime": sa.Text(), "time": sa.Text(), "interval": sa.Text(), "string": sa.Text(),
            "enum": sa.Text(), "json": sa.Text(), "binary": sa.LargeBinary(),
        }
        return casts.get(plan.kind)
    if dialect_name == "postgresql":
        if plan.kind == "enum":
            return sa.Text()
        if plan.kind == "python" and isinstance(_base(plan.sa_type), sa.Uuid):
            return sa.Text()
    return None


def _base(type_: sa.types.TypeEngine[t.Any] | None) -> sa.types.TypeEngine[t.Any] | None:
    while isinstance(type_, sa.types.TypeDecorator):
        type_ = type_.impl_instance
    return type_


# -- canonical Arrow columns -> pandas --------------------------------------------------------


def to_series(column: t.Any, dtype_backend: str) -> pd.Series:
    """A converted column as a pandas Series of the dtype in the README's table."""
    import pandas as pd

    return pd.Series(to_array(column, dtype_backend), copy=False)


def to_array(column: t.Any, dtype_backend: str) -> t.Any:
    """A converted column as the pandas array behind :func:`to_series`, without building the
    Series: a DataFrame made from arrays skips a Series and an index alignment per column,
    which is most of the cost of a small result."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(column, np.ndarray):
        return column  # object values (JSON, custom types): an object column
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    type_ = column.type
    if pa.types.is_dictionary(type_):
        return column.to_pandas().array
    if dtype_backend == "pyarrow":
        if pa.types.is_null(type_):
            nulls = np.empty(len(column), dtype=object)
            return nulls
        return pd.arrays.ArrowExtensionArray(column)
    if pa.types.is_timestamp(type_) or pa.types.is_duration(type_):
        return column.to_pandas().array
    masked = _masked_array(column)
    if masked is not None:
        return masked
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return pd.arrays.ArrowStringArray(column)
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_null(type_):
        return column.to_pandas().to_numpy(dtype=object)
    if pa.types.is_nested(type_):
        values = np.empty(len(column), dtype=object)
        values[:] = column.to_pylist()
        return values
    # decimals, dates, times, durations: Arrow-backed, exact.
    return pd.arrays.ArrowExtensionArray(column)


def _masked_array(column: pa.ChunkedArray) -> t.Any:
    """A pandas masked array (Int64, Float64, boolean) sharing the Arrow buffer where it can."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    type_ = column.type
    cls: type[t.Any]
    if pa.types.is_boolean(type_):
        cls = pd.arrays.BooleanArray
    elif pa.types.is_integer(type_):
        cls = pd.arrays.IntegerArray
    elif pa.types.is_floating(type_):
        cls = pd.arrays.FloatingArray
    else:
        return None
    fill = False if cls is pd.arrays.BooleanArray else 0
    chunks = column.chunks or [pa.array([], type=type_)]
    # One copy into a writable buffer (pandas writes into its arrays; Arrow's are read-only).
    values = np.concatenate([_numpy(chunk.fill_null(fill) if chunk.null_count else chunk) for chunk in chunks])
    if column.null_count:
        mask = np.concatenate([chunk.is_null().to_numpy(zero_copy_only=False) for chunk in chunks])
    else:
        mask = np.zeros(len(values), dtype=bool)
    return cls(values, mask, copy=False)


def _numpy(array: pa.Array) -> t.Any:
    return array.to_numpy(zero_copy_only=False)


