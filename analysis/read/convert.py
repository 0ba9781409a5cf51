"""Raw driver columns -> canonical Arrow columns, vectorised, as the column plans say.

Every route to the data (an Arrow-native driver, or DBAPI rows turned into columns) yields
*raw* columns: whatever the driver produced (SQLite timestamps as text, booleans as 0/1,
PostgreSQL numerics as text...). :func:`convert_column` casts each into its canonical Arrow type
(see the table in :mod:`analysis.read.plans`). Values are processed one by one only where no
vectorised conversion reproduces what SQLAlchemy returns (JSON, TypeDecorators with their own
processing, types without an Arrow counterpart).
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t

if t.TYPE_CHECKING:
    import pyarrow as pa

    from .plans import ColumnPlan

#: How many values of a TypeDecorator column are run through its own result processing to
#: check that the vectorised conversion gives the same values.
SAMPLE_SIZE = 32




def convert_column(column: pa.ChunkedArray, plan: ColumnPlan) -> t.Any:
    """One raw column (Arrow, or an object array of DBAPI values) in its canonical form."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = plan.kind
    if kind == "raw":
        return column if isinstance(column, np.ndarray) else _decode_extension(column)
    if kind == "python":
        return _python_column(column, plan.processor or (lambda v: v))
    if kind == "json":
        return _json(column)
    if isinstance(column, np.ndarray):
        column = _typed(column, plan)
        if isinstance(column, np.ndarray):
            return column  # values Arrow cannot hold in one type: left as they are
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if column.null_count == len(column) and kind != "decimal":
        # All NULL: a driver that infers types from values could not tell the type.
        column = pa.chunked_array([pa.nulls(len(column), _canonical_type(plan) or pa.string())])
    type_ = column.type
    if kind == "int":
        return column if type_ == pa.int64() else column.cast(pa.int64())
    if kind == "bool":
        if pa.types.is_boolean(type_):
            return column
        if pa.types.is_integer(type_) or pa.types.is_floating(type_):
            return pc.not_equal(column, 0)
        return _python_column(column, _to_bool, infer=True).cast(pa.bool_())
    if kind == "float":
        if type_ == pa.float32():
            # A single-precision column (MySQL FLOAT, PostgreSQL real): the DBAPI drivers read the
            # server's shortest spelling (0.1), not the widened binary value (0.10000000149...).
            return column.cast(pa.string()).cast(pa.float64())
        return column if type_ == pa.float64() else column.cast(pa.float64())
    if kind == "decimal":
        return _decimal(column, plan)
    if kind == "datetime":
        return _timestamp(column, plan)
    if kind == "date":
        if pa.types.is_date32(type_):
            return column
        if pa.types.is_timestamp(type_):
            return column.cast(pa.date32())
        return _parse(column, pa.date32(), lambda s: dt.date.fromisoformat(s[:10]))
    if kind == "time":
        if pa.types.is_time64(type_) and type_.unit == "us":
            return column
        if pa.types.is_time(type_):
            return column.cast(pa.time64("us"))
        if pa.types.is_duration(type_):  # MySQL's TIME arrives as a timedelta
            return column.cast(pa.duration("us")).cast(pa.int64()).cast(pa.time64("us"))
        return _parse(column, pa.time64("us"), dt.time.fromisoformat)
    if kind == "interval":
        return _interval(column, plan)
    if kind in ("string", "enum"):
        column = _decode_extension(column)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = column.cast(pa.string())
        return _categorical(column, plan) if kind == "enum" else column
    if kind == "binary":
        # binary, also from drivers that give large_binary (connectorx): one dtype on every route
        return column if pa.types.is_binary(type_) else column.cast(pa.binary())
    raise AssertionError(f"unknown column kind {kind!r}")


def _typed(values: t.Any, plan: ColumnPlan) -> t.Any:
    """DBAPI values Arrow could not type at first (enum members, mixed storage classes)."""
    import enum

    import pyarrow as pa

    cleaned = [v.name if isinstance(v, enum.Enum) else v for v in values]
    try:
        return pa.chunked_array([pa.array(cleaned)])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        if plan.kind in ("string", "enum", "date", "datetime", "time"):
            return pa.chunked_array([pa.array([None if v is None else str(v) for v in cleaned], pa.string())])
        return values


def _canonical_type(plan: ColumnPlan) -> pa.DataType | None:
    import pyarrow as pa

    return {
        "int": pa.int64(), "bool": pa.bool_(), "float": pa.float64(), "date": pa.date32(),
        "time": pa.time64("us"), "string": pa.string(), "binary": pa.binary(),
        "datetime": pa.timestamp("us", tz="UTC" if plan.timezone else None), "interval": pa.duration("us"),
        "decimal": _decimal_type(plan.precision, plan.scale),
    }.get(plan.kind)


def _decimal_type(precision: int | None, scale: int | None) -> pa.DataType | None:
    import pyarrow as pa

    if scale is None:
        return None
    if precision is None or precision > 38 or precision < scale:
        return pa.decimal128(38, min(scale, 38))
    return pa.decimal128(precision, scale)


def _decimal(column: pa.ChunkedArray, plan: ColumnPlan) -> t.Any:
    import pyarrow as pa

    target = _decimal_type(plan.precision, plan.scale)
    type_ = column.type
    if target is None:
        # Unconstrained NUMERIC: keep every digit the database sent.
        if pa.types.is_decimal(type_):
            return column
        return _python_column(column, _to_decimal, infer=True)
    if type_ == target:
        return column
    try:
        # Floats come from SQLite, which stores NUMERIC as REAL: rounding to the declared
        # scale is what SQLAlchemy does too ("%.2f"). Text and decimals must fit exactly.
        return column.cast(target, safe=not pa.types.is_floating(type_))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        wider = pa.decimal128(38, target.scale)
        try:
            return column.cast(wider, safe=not pa.types.is_floating(type_))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _python_column(column, _to_decimal, infer=True)


def _timestamp(column: pa.ChunkedArray, plan: ColumnPlan) -> t.Any:
    import pyarrow as pa

    type_ = column.type
    if pa.types.is_timestamp(type_):
        if type_.tz is not None:
            # An instant stays an instant: shown in UTC whatever the session's zone was.
            return column.cast(pa.timestamp("us", tz="UTC"))
        column = column.cast(pa.timestamp("us")) if type_.unit != "us" else column
    elif pa.types.is_date(type_):
        column = column.cast(pa.timestamp("us"))
    else:
        column = _parse(column, pa.timestamp("us"), _parse_datetime)
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            return column.cast(pa.timestamp("us", tz="UTC"))
    # A naive value in a timezone-aware column is UTC: that is how SQLAlchemy and the apps
    # that use it store aware timestamps on backends without a zone-aware type.
    return column.cast(pa.timestamp("us", tz="UTC")) if plan.timezone else column


def _interval(column: pa.ChunkedArray, plan: ColumnPlan) -> t.Any:
    """A duration column. Without a native interval type SQLAlchemy stores the epoch plus the
    interval as a timestamp; native intervals with months (PostgreSQL) need its processing."""
    import dataclasses

    import pyarrow as pa
    import pyarrow.compute as pc

    type_ = column.type
    if pa.types.is_duration(type_):
        return column.cast(pa.duration("us"))
    if pa.types.is_interval(type_):  # PostgreSQL's months, days and nanoseconds, via ADBC
        return pa.array([None if v is None else _pg_interval(*v) for v in column.to_pylist()], pa.duration("us"))
    if pa.types.is_timestamp(type_) or pa.types.is_string(type_) or pa.types.is_large_string(type_):
        stamps = _timestamp(column, dataclasses.replace(plan, kind="datetime", timezone=False))
        if pa.types.is_timestamp(stamps.type) and stamps.type.tz is None:
            return pc.subtract(stamps, pa.scalar(dt.datetime(1970, 1, 1), type=pa.timestamp("us")))
    return _python_column(column, plan.processor or (lambda v: v), infer=True)


def _pg_interval(months: int, days: int, nanoseconds: int) -> dt.timedelta:
    """A PostgreSQL interval as psycopg turns it into a timedelta (a month is 30 days, a year
    365), so both routes agree."""
    years, rest = divmod(abs(months), 12)
    extra = 30 * rest + 365 * years
    return dt.timedelta(days=days + (extra if months >= 0 else -extra), microseconds=nanoseconds // 1000)


def _parse(column: pa.ChunkedArray, target: pa.DataType, parse_one: t.Callable[[str], t.Any]) -> t.Any:
    """Vectorised parse of text; values Arrow's ISO parser refuses are parsed one by one."""
    import pyarrow as pa

    column = _decode_extension(column)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return pa.array(column.to_pylist(), type=target) if len(column) else pa.nulls(0, target)
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = [None if v is None else parse_one(v) for v in column.to_pylist()]
        return pa.array(values)


def _parse_datetime(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _categorical(column: pa.ChunkedArray, plan: ColumnPlan) -> t.Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    categories = pa.array(plan.categories, type=pa.string())
    codes = pc.index_in(column, value_set=categories)
    unknown = pc.and_(pc.is_null(codes), pc.is_valid(column))
    if pc.any(unknown).as_py():
        bad = pc.filter(column, unknown)[0].as_py()
        raise ValueError(
            f"Column {plan.name!r} holds {bad!r}, which is not one of its Enum's values"
            f" ({', '.join(plan.categories)})."
        )
    codes = codes.combine_chunks().cast(pa.int32()) if isinstance(codes, pa.ChunkedArray) else codes.cast(pa.int32())
    return pa.DictionaryArray.from_arrays(codes, categories)


def _json(column: t.Any) -> t.Any:
    import numpy as np

    values = [json.loads(v) if isinstance(v, (str, bytes)) else v for v in _values(column)]
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _python_column(column: t.Any, processor: t.Callable[[t.Any], t.Any], *, infer: bool = False) -> t.Any:
    """Process values one by one: an object array of what SQLAlchemy gives (the same dtype in
    every chunk), or with ``infer`` an Arrow array typed from the results where possible."""
    import numpy as np
    import pyarrow as pa

    values = [None if v is None else processor(v) for v in _values(column)]
    if infer:
        try:
            array = pa.array(values)
            if not pa.types.is_nested(array.type):
                return array
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _values(column: t.Any) -> list[t.Any]:
    import numpy as np

    if isinstance(column, np.ndarray):
        return list(column)
    return _decode_extension(column).to_pylist()


def _decode_extension(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """JSON and other extension types as their storage (text)."""
    import pyarrow as pa

    if isinstance(column.type, pa.ExtensionType):
        return pa.chunked_array([c.storage for c in column.chunks], type=column.type.storage_type)
    return column


def _to_bool(value: t.Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true", "y", "yes")
    return bool(value)


def _to_decimal(value: t.Any) -> t.Any:
    import decimal

    return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))


def sample_disagrees(raw: pa.ChunkedArray, converted: t.Any, plan: ColumnPlan) -> bool:
    """Whether the TypeDecorator's own processing gives other values than the vectorised one."""
    import numpy as np
    import pyarrow as pa

    assert plan.processor is not None
    n = len(raw)
    if n == 0:
        return False
    step = max(1, n // SAMPLE_SIZE)
    positions = list(range(0, n, step))[:SAMPLE_SIZE]
    raw_values = [raw[i] if isinstance(raw, np.ndarray) else raw[i].as_py() for i in positions]
    if isinstance(converted, (pa.Array, pa.ChunkedArray)):
        ours = [converted[i].as_py() for i in positions]
    else:
        ours = [converted[i] for i in positions]
    try:
        theirs = [None if v is None else plan.processor(v) for v in raw_values]
    except Exception:
        return True
    return any(not _same_value(a, b) for a, b in zip(ours, theirs, strict=False))


def same_values_as_dbapi(raw: t.Any, plan: ColumnPlan, dialect_name: str) -> bool:
    """Whether the Arrow driver's values, as Python objects, are those the DBAPI driver gives,
    so SQLAlchemy's own processing can be applied to them.

    SQLite's module returns int, float, str and bytes, as ADBC's SQLite driver does. On
    PostgreSQL, psycopg returns numerics as Decimal, JSON parsed and timestamps in the session's
    zone where ADBC gives text and UTC, so only the plain types qualify.
    """
    import pyarrow as pa

    type_ = getattr(raw, "type", None)
    if type_ is None:
        return False
    if dialect_name == "sqlite":
        return True
    plain = (
        pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_boolean(type_)
        or pa.types.is_binary(type_) or pa.types.is_date32(type_) or pa.types.is_time64(type_)
    )
    text = pa.types.is_string(type_) and plan.kind in ("string", "enum")
    return plain or text


def _same_value(ours: t.Any, theirs: t.Any) -> bool:
    import enum

    if isinstance(theirs, enum.Enum):
        theirs = theirs.name
    if isinstance(ours, dt.datetime) and isinstance(theirs, dt.datetime):
        if (ours.tzinfo is None) != (theirs.tzinfo is None):
            return False
    try:
        return bool(ours == theirs)
    except Exception:
        return False
