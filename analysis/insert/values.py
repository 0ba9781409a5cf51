"""DataFrame columns -> the values a database driver accepts for a model's column.

One column at a time, vectorised where pandas allows: missing values (``NaN``, ``NaT``,
``pd.NA``, ``None``) become ``None`` (SQL NULL), pandas and NumPy scalars become plain Python
objects, and the column type's own bind processing (a ``TypeDecorator``'s
``process_bind_param``, SQLite's datetime-to-text, Enum validation, JSON serialisation) is applied
exactly as SQLAlchemy would apply it, so what lands in the table is what the ORM would write.

Values are checked against the model's column type, not coerced silently: text in a number
column, a fractional float in an integer column or a non-midnight timestamp in a date column is
a :class:`BadValue` naming the position.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import typing as t
import uuid

import sqlalchemy as sa

from ..errors import BadValue, first_line

if t.TYPE_CHECKING:
    import pandas as pd

Converter = t.Callable[["pd.Series"], list[t.Any]]


def column_kind(column: sa.Column[t.Any]) -> str:
    """What kind of Python value the column's type takes: "int", "datetime", "json"...

    Decided from the type's ``python_type``, so a ``TypeDecorator`` counts as its ``impl``.
    """
    type_ = column.type
    while True:
        if isinstance(type_, sa.JSON):
            return "json"
        if isinstance(type_, sa.Enum):
            return "enum"
        try:
            python_type = type_.python_type
        except NotImplementedError:
            python_type = object
        # A TypeDecorator that does not say (python_type is object) takes what its impl takes.
        if python_type is not object or not isinstance(type_, sa.TypeDecorator):
            break
        type_ = type_.impl_instance
    for base, kind in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (decimal.Decimal, "decimal"),
        (dt.datetime, "datetime"),  # before date: datetime is a date
        (dt.date, "date"),
        (dt.timedelta, "timedelta"),
        (str, "str"),
        (enum.Enum, "enum"),
        (bytes, "bytes"),
        (uuid.UUID, "uuid"),
    ):
        if isinstance(python_type, type) and issubclass(python_type, base):
            return kind
    return "object"


def converter(column: sa.Column[t.Any], dialect: sa.Dialect) -> Converter:
    """A function turning one chunk of a Series into a list of driver-ready values."""
    kind = column_kind(column)
    to_python = _TO_PYTHON[kind]
    naive = kind == "datetime" and not getattr(column.type, "timezone", False)
    if kind == "enum":
        to_python = _enum_values(column)
    process = bind_processor(column.type, dialect)

    def convert(series: pd.Series) -> list[t.Any]:
        values = to_python(series, naive) if kind == "datetime" else to_python(series)
        if process is not None:
            values = _processed(values, process)
        return values

    return convert


def bind_processor(type_: sa.types.TypeEngine[t.Any], dialect: sa.Dialect) -> t.Callable[[t.Any], t.Any] | None:
    """The type's bind processing for ``dialect``, as SQLAlchemy composes it, with one shortcut:
    SQLite's datetime-to-text step (the slowest per value) done by ``isoformat``, which gives
    the same text as SQLAlchemy's default storage format."""
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, sa.TypeDecorator):
        inner = _sqlite_datetime_text(impl.impl_instance, dialect)
        if inner is None or type(impl).bind_processor is not sa.TypeDecorator.bind_processor:
            return impl.bind_processor(dialect)
        if type(impl).process_bind_param is sa.TypeDecorator.process_bind_param:
            return inner
        param = impl.process_bind_param

        def process(value: t.Any) -> t.Any:
            return inner(param(value, dialect))

        return process
    return _sqlite_datetime_text(impl, dialect) or impl.bind_processor(dialect)


_SQLITE_DATETIME_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)


def _sqlite_datetime_text(impl: sa.types.TypeEngine[t.Any], dialect: sa.Dialect) -> t.Callable[[t.Any], t.Any] | None:
    from sqlalchemy.dialects import sqlite

    if not isinstance(impl, sqlite.DATETIME) or getattr(impl, "_storage_format", None) != _SQLITE_DATETIME_FORMAT:
        return None
    general = impl.bind_processor(dialect)
    assert general is not None
    datetime = dt.datetime

    def process(value: t.Any) -> t.Any:
        if type(value) is datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return general(value)

    return process


def _processed(values: list[t.Any], process: t.Callable[[t.Any], t.Any]) -> list[t.Any]:
    try:
        return [None if v is None else process(v) for v in values]
    except Exception:
        pass
    # Rare path: find which value the type refused, and say why.
    for position, value in enumerate(values):
        if value is None:
            continue
        try:
            process(value)
        except Exception as e:
            raise BadValue(position, f"{_plain(value)!r} was refused by the column type: {_reason(e)}") from e
    raise AssertionError("unreachable: a bind processor failed, then succeeded on every value")


# -- per kind: Series -> list of plain Python values, None for missing ------------------------


def _missing(series: pd.Series) -> t.Any:
    return series.isna().to_numpy()


def _objects(series: pd.Series) -> list[t.Any]:
    """Python objects with None for missing values, whatever the dtype."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    values = t.cast(t.Any, series).to_numpy(dtype=object, na_value=None)
    missing = _missing(series)
    if missing.any():
        values = values.copy()  # may be a read-only view of the frame's data
        values[missing] = None
    return values.tolist()


def _first(mask: t.Any) -> int:
    import numpy as np

    return int(np.flatnonzero(mask)[0])


def _dtype_error(series: pd.Series, expected: str) -> BadValue:
    missing = _missing(series)
    position = _first(~missing) if (~missing).any() else 0
    return BadValue(
        position,
        f"the column holds {series.dtype} values (first {_plain(series.iloc[position])!r}); the model's"
        f" column takes {expected}",
    )


def _check_objects(values: list[t.Any], accept: t.Callable[[t.Any], t.Any], expected: str) -> list[t.Any]:
    """Apply ``accept`` to each non-missing value; it returns the value to use or raises."""
    out: list[t.Any] = []
    for position, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(accept(value))
        except (TypeError, ValueError, ArithmeticError):
            raise BadValue(position, f"{_plain(value)!r} ({type(value).__name__}) is not {expected}") from None
    return out


def _to_int(series: pd.Series) -> list[t.Any]:
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        series = series.astype("Int64")
        dtype = series.dtype
    if pd.api.types.is_integer_dtype(dtype):
        if isinstance(dtype, np.dtype):
            return series.to_numpy().tolist()
        return _objects(series)
    if pd.api.types.is_float_dtype(dtype):
        floats = series.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(floats)
        fractional = ~missing & ((floats != np.floor(floats)) | np.isinf(floats))
        if fractional.any():
            position = _first(fractional)
            raise BadValue(
                position, f"{float(floats[position])!r} is not a whole number; the model's column takes integers"
            )
        values = np.where(missing, 0, floats).astype(np.int64).astype(object)
        values[missing] = None
        return values.tolist()
    if _is_object(dtype):
        return _check_objects(_objects(series), _accept_int, "an integer")
    raise _dtype_error(series, "integers")


def _accept_int(value: t.Any) -> int:
    import numpy as np

    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, decimal.Decimal)) and value == int(value):
        return int(value)
    raise TypeError


def _to_float(series: pd.Series) -> list[t.Any]:
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        floats = series.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(floats)
        values = floats.astype(object)
        if missing.any():
            values[missing] = None
        return values.tolist()
    if _is_object(dtype):
        return _check_objects(_objects(series), _accept_float, "a number")
    raise _dtype_error(series, "numbers")


def _accept_float(value: t.Any) -> float:
    import numpy as np

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, decimal.Decimal, np.number)):
        raise TypeError
    return float(value)


def _to_decimal(series: pd.Series) -> list[t.Any]:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_float_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        # Floats are written as their shortest repr, which every backend parses exactly.
        return _to_float(series) if pd.api.types.is_float_dtype(dtype) else _to_int(series)
    if _is_object(dtype) or (isinstance(dtype, pd.ArrowDtype) and "decimal" in str(dtype)):
        return _check_objects(_objects(series), _accept_decimal, "a number")
    raise _dtype_error(series, "numbers (Decimal)")


def _accept_decimal(value: t.Any) -> t.Any:
    import numpy as np

    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise TypeError


def _to_bool(series: pd.Series) -> list[t.Any]:
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if isinstance(dtype, np.dtype):
            return series.to_numpy().tolist()
        return _objects(series)
    if _is_object(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return _check_objects(_objects(series), _accept_bool, "True or False (or 1/0)")
    raise _dtype_error(series, "booleans")


def _accept_bool(value: t.Any) -> bool:
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.number)) and value in (0, 1):
        return bool(value)
    raise TypeError


def _to_datetime(series: pd.Series, naive: bool) -> list[t.Any]:
    import pandas as pd

    series = _from_arrow_temporal(series)
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        if isinstance(dtype, pd.DatetimeTZDtype):
            # The same instants in UTC, which has no DST: flooring cannot hit an ambiguous time.
            series = series.dt.tz_convert("UTC")
            if naive:
                # A column without a time zone stores UTC wall time.
                series = series.dt.tz_localize(None)
        series = series.dt.floor("us")  # databases keep microseconds at most
        values = series.array.to_pydatetime()
        return _objects(pd.Series(values, index=series.index, dtype=object))
    if _is_object(dtype):
        return _check_objects(_objects(series), _accept_datetime, "a datetime (use pd.to_datetime(..., utc=True))")
    raise _dtype_error(series, "datetimes (convert with pd.to_datetime(..., utc=True))")


def _is_arrow(dtype: t.Any) -> bool:
    import pandas as pd

    return isinstance(dtype, pd.ArrowDtype)


def _from_arrow_temporal(series: pd.Series) -> pd.Series:
    """Arrow timestamps and durations (``dtype_backend="pyarrow"``) as their NumPy-backed
    equivalents, which the paths below vectorise."""
    import pandas as pd
    import pyarrow as pa

    dtype = series.dtype
    if not isinstance(dtype, pd.ArrowDtype):
        return series
    arrow = dtype.pyarrow_dtype
    if pa.types.is_timestamp(arrow):
        return series.astype(pd.DatetimeTZDtype("us", arrow.tz) if arrow.tz else "datetime64[us]")
    if pa.types.is_duration(arrow):
        return series.astype("timedelta64[us]")
    return series


def _accept_datetime(value: t.Any) -> dt.datetime:
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        return value.floor("us").to_pydatetime()
    if isinstance(value, dt.datetime):
        return value
    raise TypeError


def _to_date(series: pd.Series) -> list[t.Any]:
    import pandas as pd

    series = _from_arrow_temporal(series)
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        present = series.notna().to_numpy()
        with_time = present & (series != series.dt.normalize()).to_numpy()
        if with_time.any():
            position = _first(with_time)
            raise BadValue(position, f"{series.iloc[position]} has a time of day; the model's column is a date")
        return _objects(pd.Series(series.dt.date, index=series.index, dtype=object))
    if _is_object(dtype) or _is_arrow(dtype):
        return _check_objects(_objects(series), _accept_date, "a date")
    raise _dtype_error(series, "dates")


def _accept_date(value: t.Any) -> dt.date:
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0) or value.tzinfo is not None:
            raise ValueError
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise TypeError


def _to_timedelta(series: pd.Series) -> list[t.Any]:
    import pandas as pd

    series = _from_arrow_temporal(series)
    if pd.api.types.is_timedelta64_dtype(series.dtype):
        values = series.dt.floor("us").array.to_pytimedelta()
        return _objects(pd.Series(values, index=series.index, dtype=object))
    if _is_object(series.dtype) or _is_arrow(series.dtype):
        return _check_objects(_objects(series), _accept_timedelta, "a timedelta")
    raise _dtype_error(series, "durations (timedelta)")


def _accept_timedelta(value: t.Any) -> dt.timedelta:
    import pandas as pd

    if isinstance(value, pd.Timedelta):
        return value.floor("us").to_pytimedelta()
    if isinstance(value, dt.timedelta):
        return value
    raise TypeError


def _to_str(series: pd.Series) -> list[t.Any]:
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return _objects(series)
    if _is_object(dtype) or isinstance(dtype, pd.CategoricalDtype) or _is_arrow(dtype):
        values = _objects(series)
        if all(type(v) is str or v is None for v in values):
            return values
        return _check_objects(values, _accept_str, "text")
    raise _dtype_error(series, "text")


def _accept_str(value: t.Any) -> str:
    if isinstance(value, str):
        return str(value)
    raise TypeError


def _enum_values(column: sa.Column[t.Any]) -> t.Callable[[pd.Series], list[t.Any]]:
    """Enum members, or the strings the database stores for them; anything else is refused
    (SQLAlchemy would pass an unknown string through, and SQLite would store it)."""
    type_ = column.type
    while isinstance(type_, sa.TypeDecorator) and not isinstance(type_, sa.Enum):
        type_ = type_.impl_instance
    assert isinstance(type_, sa.Enum)
    allowed: set[t.Any] = set(type_.enums)
    if type_.enum_class is not None:
        allowed.update(type_.enum_class)
    expected = "one of " + ", ".join(map(repr, type_.enums))

    def accept(value: t.Any) -> t.Any:
        if value in allowed:
            return value
        raise ValueError

    def convert(series: pd.Series) -> list[t.Any]:
        return _check_objects(_objects(series), accept, expected)

    return convert


def _to_json(series: pd.Series) -> list[t.Any]:
    # A missing value is SQL NULL, not the JSON document ``null``.
    return _check_objects(_objects(series), _accept_json, "JSON-serialisable")


def _accept_json(value: t.Any) -> t.Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


_TO_PYTHON: dict[str, t.Callable[..., list[t.Any]]] = {
    "int": _to_int,
    "float": _to_float,
    "decimal": _to_decimal,
    "bool": _to_bool,
    "datetime": _to_datetime,
    "date": _to_date,
    "timedelta": _to_timedelta,
    "str": _to_str,
    "json": _to_json,
    "enum": _objects,
    "bytes": _objects,
    "uuid": _objects,
    "object": _objects,
}


def _plain(value: t.Any) -> t.Any:
    """NumPy scalars shown as the Python values they stand for (2.5, not np.float64(2.5))."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


def _reason(error: BaseException) -> str:
    return first_line(error)


def _is_object(dtype: t.Any) -> bool:
    """A column of Python objects (``dtype('O')``)."""
    import numpy as np

    return bool(dtype == np.dtype(object))
