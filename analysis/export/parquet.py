"""Parquet files written row group by row group, with one schema for the whole file."""

from __future__ import annotations

import typing as t

from ..errors import ExportError

if t.TYPE_CHECKING:
    import pyarrow as pa


class ParquetSink:
    """One row group per chunk; the schema is the first chunk's, later chunks are cast to it."""

    def __init__(self, raw: t.BinaryIO, names: list[str], compression: str | None) -> None:
        self.raw = raw
        self.names = names
        self.compression = compression or "none"
        self.rows = 0
        self._writer: t.Any = None

    def write(self, chunk: t.Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if hasattr(chunk, "iloc"):  # a DataFrame
            table = pa.Table.from_pandas(chunk, preserve_index=False)
        else:
            table = chunk
        table = table.rename_columns(self.names)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.raw, table.schema, compression=self.compression)
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
