"""Parquet files written row group by row group, with one schema for the whole file.

The file carries pandas' own metadata, made from a DataFrame with ``frame()``'s dtypes, so
``pd.read_parquet(path)`` gives those dtypes back (``Int64`` with NULLs, ``boolean``,
``string``, ordered categories, exact decimals, UTC timestamps) instead of guessing from the
Arrow types (``float64`` for an integer column with NULLs).
"""

from __future__ import annotations

import typing as t

from ..errors import ExportError

if t.TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


class ParquetSink:
    """One row group per chunk; the schema is the first chunk's, later chunks are cast to it."""

    def __init__(self, raw: t.BinaryIO, names: list[str], compression: str | None) -> None:
        self.raw = raw
        self.names = names
        self.compression = compression or "none"
        self.rows = 0
        self._writer: t.Any = None
        self._metadata: dict[bytes, bytes] | None = None

    @property
    def described(self) -> bool:
        return self._metadata is not None

    def describe(self, like: pd.DataFrame) -> None:
        """Take the pandas dtypes the file should read back as from ``like`` (no rows needed);
        before the first :meth:`write`."""
        if self._metadata is None:
            self._metadata = pandas_metadata(like)

    def write(self, chunk: t.Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if hasattr(chunk, "iloc"):  # a DataFrame
            self.describe(chunk)
            table = pa.Table.from_pandas(chunk, preserve_index=False)
        else:
            table = chunk
        table = table.rename_columns(self.names)
        if self._writer is None:
            schema = table.schema.with_metadata(self._metadata or {})
            self._writer = pq.ParquetWriter(self.raw, schema, compression=self.compression)
        elif table.schema != self._writer.schema:
            table = self._conform(table)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def _conform(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        try:
            return table.cast(self._writer.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
            raise ExportError(
                f"A later chunk of the query has other column types than the first ({e})."
                " Parquet needs one type per column: CAST the column in the SQL."
            ) from e

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def pandas_metadata(like: pd.DataFrame) -> dict[bytes, bytes]:
    """The schema metadata pandas writes for ``like``, naming each extension dtype so that
    reading restores it: pyarrow records Arrow-backed decimals as ``object`` and the pyarrow
    storage of ``string`` as plain ``string`` unless told."""
    import json

    import pandas as pd
    import pyarrow as pa

    metadata = pa.Schema.from_pandas(like, preserve_index=False).metadata or {}
    description = json.loads(metadata[b"pandas"])
    for column in description["columns"]:
        dtype = like[column["name"]].dtype
        if not isinstance(dtype, pd.api.extensions.ExtensionDtype) or isinstance(
            dtype, (pd.CategoricalDtype, pd.DatetimeTZDtype)
        ):
            continue  # numpy dtypes, categories and zoned timestamps: pyarrow's own record works
        name = f"string[{dtype.storage}]" if isinstance(dtype, pd.StringDtype) else str(dtype)
        # Only a name pandas reads back as this very dtype: a reader fails on one it cannot
        # parse, and pandas parses no Arrow type with parameters (decimal128(12, 2)), so
        # exact decimals read back as Decimal objects.
        try:
            readable = pd.api.types.pandas_dtype(name) == dtype
        except (TypeError, ValueError, NotImplementedError):
            readable = False
        if readable:
            column["numpy_type"] = name
    return {b"pandas": json.dumps(description).encode()}
