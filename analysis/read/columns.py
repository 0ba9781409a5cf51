"""Columns from batches: convert each batch as it arrives, then join them into a DataFrame.

A batch is a list of raw columns (Arrow arrays from an Arrow-native driver, or arrays built
from DBAPI rows). Converting batch by batch lets each raw batch be freed as soon as it is
converted, so a whole result is held in memory once, plus one batch.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ..errors import QueryError, Unfaithful
from . import convert, plans

if t.TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

Column = t.Union["pa.ChunkedArray", "pa.Array", "np.ndarray[t.Any, t.Any]"]
#: Column names and one batch of raw columns.
Batch = tuple[list[str], list[Column]]


class Converter:
    """Applies the column plans to batch after batch.

    A TypeDecorator column is checked on its first values against SQLAlchemy's own
    processing; on a disagreement the column is processed value by value from then on, as the
    ORM would. With ``check`` (raw values from the Arrow driver), that is only done where the
    driver's values are the ones the DBAPI driver would give; otherwise
    :class:`Unfaithful` sends the read to SQLAlchemy's route.
    """

    def __init__(self, plans: list[plans.ColumnPlan], *, check: bool, dialect_name: str = "") -> None:
        self.plans = list(plans)
        self.check = check
        self.dialect_name = dialect_name
        self.checked: set[int] = set()

    def convert(self, raw: list[Column]) -> list[Column]:
        import pyarrow as pa

        out: list[Column] = []
        for i, plan in enumerate(self.plans):
            column, raw[i] = raw[i], t.cast(Column, None)  # let the raw column go as it is converted
            try:
                converted = convert.convert_column(column, plan)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                if self.check:  # stored values the fast route cannot type: let SQLAlchemy read them
                    raise Unfaithful(plan.name) from e
                raise QueryError(f"Column {plan.name!r} holds values that do not fit its type: {e}") from e
            except ValueError as e:
                raise QueryError(str(e)) from e
            if plan.processor is not None and plan.kind != "python" and i not in self.checked and len(column):
                self.checked.add(i)
                if convert.sample_disagrees(column, converted, plan):
                    if self.check and not convert.same_values_as_dbapi(column, plan, self.dialect_name):
                        raise Unfaithful(plan.name)
                    self.plans[i] = plan = dataclasses.replace(plan, kind="python")
                    converted = convert.convert_column(column, plan)
            out.append(_detach(converted, column))
            del column
        return out


def _detach(converted: Column, raw: Column) -> Column:
    """``converted`` as one array, copied if it shares memory with ``raw``.

    An Arrow batch imported from a driver is freed only once none of its columns is referenced,
    so a column kept as it came (text, integers) would keep the whole raw batch alive.
    """
    import pyarrow as pa

    if isinstance(converted, pa.ChunkedArray):
        converted = converted.combine_chunks() if converted.num_chunks != 1 else converted.chunk(0)
    if not isinstance(converted, pa.Array) or not isinstance(raw, (pa.Array, pa.ChunkedArray)):
        return converted
    raw_chunks = raw.chunks if isinstance(raw, pa.ChunkedArray) else [raw]
    shared = {b.address for chunk in raw_chunks for b in chunk.buffers() if b is not None}
    if any(b is not None and b.address in shared for b in converted.buffers()):
        return pa.concat_arrays([converted])
    return converted


def assemble(names: list[str], chunks: list[list[Column]], dtype_backend: str) -> pd.DataFrame:
    """One DataFrame from converted chunks, freeing each column's chunks as it goes."""
    import pandas as pd

    data: dict[int, t.Any] = {}
    for i in range(len(names)):
        parts, chunks[i] = chunks[i], []
        column = _concat(parts)
        del parts
        data[i] = plans.to_array(column, dtype_backend)
        del column
    frame = pd.DataFrame(data, copy=False)
    frame.columns = list(names)
    return frame


def rows_to_columns(rows: t.Sequence[t.Sequence[t.Any]], width: int, objects: t.Container[int] = ()) -> list[Column]:
    """DBAPI rows -> one Arrow array per column (object arrays where Arrow cannot type them)."""
    import pyarrow as pa

    columns: list[Column] = []
    for i, values in enumerate(zip(*rows, strict=False) if rows else [()] * width):
        if i not in objects:
            try:
                array = pa.array(values)
                if not pa.types.is_nested(array.type):
                    columns.append(array)
                    continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
                pass
        columns.append(_object_array(values))
    return columns


def _concat(parts: list[Column]) -> Column:
    """One column from its chunks: Arrow when they share a type (after unifying), else objects."""
    import numpy as np
    import pyarrow as pa

    if not parts:
        return empty_column()
    if all(isinstance(p, pa.Array) for p in parts):
        arrays = t.cast(list[t.Any], parts)
        types = {p.type for p in arrays if not pa.types.is_null(p.type)}
        if len(types) <= 1:
            target = types.pop() if types else pa.null()
            return pa.chunked_array([p if p.type == target else p.cast(target) for p in arrays], type=target)
        try:
            schemas = [pa.schema([("c", ty)]) for ty in types]
            target = pa.unify_schemas(schemas, promote_options="permissive").field("c").type
            return pa.chunked_array([p.cast(target) for p in arrays], type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
    values: list[t.Any] = []
    for p in parts:
        values += p.to_pylist() if isinstance(p, pa.Array) else list(p)
    return _object_array(values)


def _object_array(values: t.Sequence[t.Any]) -> np.ndarray[t.Any, t.Any]:
    import numpy as np

    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def empty_column() -> pa.Array:
    import pyarrow as pa

    return pa.nulls(0)
