"""How values are spelled in the CSV files the toolkit writes, and the writer that does it.

One spelling on every backend and every route (the PostgreSQL ``COPY`` route in
:mod:`analysis.pgcopy` produces the same):

=====================  ======================================================================
NULL                   an empty field, unquoted (an empty string is ``""``)
integers, decimals     bare, as stored (``12.50`` stays ``12.50`` where the database keeps
                       decimals; SQLite stores NUMERIC as a float, so there it is ``12.5``)
floats                 bare, the shortest form that reads back to the same double
booleans               bare, ``true`` / ``false``
text                   quoted, ``"`` doubled (RFC 4180); with ``excel_safe`` a ``'`` is put
                       before text that starts with ``= + - @``, tab or carriage return
timestamps with zone   quoted, ISO 8601 in UTC: ``2026-01-05T09:30:00.123456+00``; the
                       fraction of a second without trailing zeros (``09:30:00+00``)
timestamps, no zone    quoted, ``2026-01-05T09:30:00.123456``
dates, times           quoted, ``2026-01-05``, ``09:30:00.5``
binary                 quoted, ``\\x`` and hex digits, as PostgreSQL writes ``bytea``
=====================  ======================================================================

The header is the column names, quoted only where needed. Records end with ``\\n`` unless
another ``lineterminator`` is asked for.

Excel formula injection (OWASP "CSV injection"): a spreadsheet runs a cell that starts with
``=``, ``+``, ``-`` or ``@`` (and some also after a tab or carriage return) as a formula, so
user-entered text like ``=HYPERLINK("http://x","y")`` becomes a live link. ``excel_safe``
prefixes such text with a single quote, which spreadsheets show as text. Numbers, dates and
booleans are never touched, and neither is text in any other position.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import json
import typing as t

if t.TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: First characters that make a spreadsheet treat a cell as a formula (OWASP).
EXCEL_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: How a UTC offset is written after a timestamp: ISO 8601's ``±hh``, as PostgreSQL writes it.
UTC_SUFFIX = "+00"


def neutralise(value: str) -> str:
    """``value`` made safe to open in a spreadsheet: ``'=1+1`` for ``=1+1``."""
    return "'" + value if value.startswith(EXCEL_TRIGGERS) else value


def neutralise_array(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """:func:`neutralise` on every value of an Arrow string array, vectorised."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(array) == 0:
        return array
    # The triggers are ASCII, so comparing the first byte is exact (and ~4x faster than
    # slicing by character).
    if pa.types.is_string_view(array.type):
        array = pc.cast(array, pa.string())
    binary = pa.large_binary() if pa.types.is_large_string(array.type) else pa.binary()
    if isinstance(array, pa.ChunkedArray):
        as_bytes = pa.chunked_array([chunk.view(binary) for chunk in array.chunks], binary)
    else:
        as_bytes = array.view(binary)
    first = pc.binary_slice(as_bytes, 0, 1)
    mask = pc.is_in(first, value_set=pa.array([c.encode() for c in EXCEL_TRIGGERS], binary))
    if not pc.any(mask).as_py():
        return array
    prefixed = pc.binary_join_element_wise(pa.scalar("'", array.type), array, pa.scalar("", array.type))
    return pc.if_else(mask, prefixed, array)


def spell_frame(frame: pd.DataFrame, *, excel_safe: bool) -> list[pa.Array | pa.ChunkedArray]:
    """The columns of a DataFrame chunk, spelled for CSV (see :func:`spell_array`).

    A column Arrow cannot type as a whole (SQLite lets one column hold numbers and text) is
    spelled value by value, and only its text values are neutralised.
    """
    import pyarrow as pa

    arrays = []
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        try:
            array = pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
            arrays.append(_spell_cells(column.tolist(), excel_safe=excel_safe))
            continue
        arrays.append(spell_array(array, excel_safe=excel_safe))
    return arrays


def spell_array(array: pa.Array | pa.ChunkedArray, *, excel_safe: bool) -> pa.Array | pa.ChunkedArray:
    """One Arrow column as the writer should print it.

    Numbers and booleans stay as they are and are written bare; everything else becomes a
    string array, which the writer quotes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    type_ = array.type
    if pa.types.is_dictionary(type_):
        array = pc.cast(array, type_.value_type)
        type_ = array.type
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return neutralise_array(array) if excel_safe else array
    if (
        pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)
        or pa.types.is_boolean(type_) or pa.types.is_null(type_)
    ):
        return array
    if pa.types.is_timestamp(type_):
        return _spell_timestamps(array)
    if pa.types.is_date(type_):
        return pc.cast(array, pa.string())
    if pa.types.is_time(type_):
        return _trim_fractions(pc.cast(pc.cast(array, pa.time64("us")), pa.string()))
    # Binary, durations, lists, structs, maps: spelled by Python, one value at a time.
    return _spell_cells(array.to_pylist(), excel_safe=excel_safe)


def _spell_cells(values: list[t.Any], *, excel_safe: bool) -> pa.Array:
    import pyarrow as pa

    cells: list[str | None] = []
    for value in values:
        if value is None or (isinstance(value, float) and value != value):
            cells.append(None)
        elif isinstance(value, str):
            cells.append(neutralise(value) if excel_safe else value)
        else:
            cells.append(spell_scalar(value))
    return pa.array(cells, pa.string())


def spell_value(value: t.Any) -> str | None:
    """Any one value as the CSV spells it (``None``: the empty field of NULL)."""
    if value is None:
        return None
    return value if isinstance(value, str) else spell_scalar(value)


def spell_scalar(value: t.Any) -> str:
    """One non-text Python value as the CSV spells it."""
    import datetime as dt
    import enum

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
            return _trim_fraction(value.isoformat(timespec="microseconds")) + UTC_SUFFIX
        return _trim_fraction(value.isoformat(timespec="microseconds"))
    if isinstance(value, dt.time):
        return _trim_fraction(value.replace(tzinfo=None).isoformat(timespec="microseconds"))
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, enum.Enum):
        return str(value.name)
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _trim_fraction(text: str) -> str:
    """``12:00:00.500000`` -> ``12:00:00.5``, ``12:00:00.000000`` -> ``12:00:00``."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _trim_fractions(text: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """:func:`_trim_fraction` on an Arrow array of ``...SS.ffffff`` strings (never without a
    fraction, so trimming stops at the dot, before the seconds' digits)."""
    import pyarrow.compute as pc

    return pc.ascii_rtrim(pc.ascii_rtrim(text, characters="0"), characters=".")


def _spell_timestamps(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """ISO 8601 with a ``T``; zoned values in UTC with ``+00``; as PostgreSQL writes them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    zoned = array.type.tz is not None
    micro = pc.cast(array, pa.timestamp("us", array.type.tz), safe=False)
    # Arrow keeps zoned timestamps as UTC instants, so dropping the zone gives UTC wall time,
    # and formatting naive values is ~20x faster than formatting zoned ones.
    if isinstance(micro, pa.ChunkedArray):
        naive = pa.chunked_array([c.view(pa.timestamp("us")) for c in micro.chunks], pa.timestamp("us"))
    else:
        naive = micro.view(pa.timestamp("us"))
    text = pc.binary_replace_slice(_trim_fractions(pc.cast(naive, pa.string())), 10, 11, "T")
    return pc.binary_join_element_wise(text, UTC_SUFFIX, "") if zoned else text


class CsvWriter:
    """Writes a header and then Arrow tables or DataFrames as CSV to a binary file.

    ``encoding`` is ``"utf-8"`` (the default), ``"utf-8-sig"`` (a byte-order mark first, so
    Excel on Windows detects UTF-8) or any codec Python knows; text that the codec cannot
    represent is an error, never silently replaced.
    """

    def __init__(
        self,
        sink: t.BinaryIO,
        names: t.Sequence[str],
        *,
        excel_safe: bool = True,
        encoding: str = "utf-8",
        lineterminator: str = "\n",
    ) -> None:
        self.names = list(names)
        self.excel_safe = excel_safe
        self.lineterminator = lineterminator
        self._out = _EncodedSink(sink, encoding)
        self.bytes_written = 0
        self.rows = 0

    def write_header(self) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator=self.lineterminator).writerow(self.names)
        self._out.write(text.getvalue().encode("utf-8"))

    def write(self, chunk: pa.Table | pd.DataFrame) -> None:
        """Append the rows of an Arrow table or a DataFrame."""
        if hasattr(chunk, "iloc"):
            self.write_frame(chunk)
        else:
            self.write_table(chunk)

    def write_frame(self, frame: pd.DataFrame) -> None:
        """Append the rows of a DataFrame chunk."""
        if len(frame):
            self._write_arrays(spell_frame(frame, excel_safe=self.excel_safe), len(frame))

    def write_columns(self, columns: t.Sequence[t.Any]) -> None:
        """Append converted columns from the read pipeline: Arrow arrays, or object arrays of
        Python values (JSON documents, a TypeDecorator's values) spelled one by one."""
        import numpy as np

        if not columns or not len(columns[0]):
            return
        arrays = [
            _spell_cells(list(column), excel_safe=self.excel_safe)
            if isinstance(column, np.ndarray)
            else spell_array(column, excel_safe=self.excel_safe)
            for column in columns
        ]
        self._write_arrays(arrays, len(columns[0]))

    def write_table(self, table: pa.Table) -> None:
        """Append the rows of an Arrow table."""
        if table.num_rows:
            arrays = [spell_array(column, excel_safe=self.excel_safe) for column in table.columns]
            self._write_arrays(arrays, table.num_rows)

    def _write_arrays(self, arrays: list[t.Any], num_rows: int) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        # Arrow's "needed" quoting quotes every string value and nothing else, which is the
        # rule in the module docstring: numbers and booleans bare, everything else quoted.
        spelled = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
        options = {"include_header": False, "quoting_style": "needed", "batch_size": 8192}
        if self.lineterminator == "\n":
            # Written straight into the sink, a few thousand rows at a time: no copy of the chunk.
            pacsv.write_csv(spelled, self._out, pacsv.WriteOptions(**options))
        elif _writer_takes_eol():
            pacsv.write_csv(spelled, self._out, pacsv.WriteOptions(**options, eol=self.lineterminator))
        else:
            # pyarrow before 25 ends records with \n only: write the chunk, then change the ends
            # of records, which are the newlines outside quotes (every text value is quoted).
            buffer = io.BytesIO()
            pacsv.write_csv(spelled, buffer, pacsv.WriteOptions(**options))
            self._out.write(_replace_record_ends(buffer.getvalue(), self.lineterminator.encode()))
        del spelled, arrays
        pa.default_memory_pool().release_unused()
        self.rows += num_rows

    def write_bytes(self, data: bytes | memoryview) -> None:
        """Already-formatted CSV (from PostgreSQL's COPY), UTF-8."""
        self._out.write(data)

    def close(self) -> None:
        self._out.finish()

    @property
    def bytes_out(self) -> int:
        return self._out.bytes_out


@functools.cache
def _writer_takes_eol() -> bool:
    """Whether this pyarrow's CSV writer takes ``eol`` (pyarrow 25 and later)."""
    import pyarrow.csv as pacsv

    try:
        pacsv.WriteOptions(eol="\r\n")
    except TypeError:
        return False
    return True


def _replace_record_ends(data: bytes, end: bytes) -> bytes:
    """``data``'s newlines outside double quotes replaced by ``end``.

    Split at the quotes, the even pieces are outside quoted fields (or empty, between the two
    quotes of an escaped ``""``), so only their newlines end records.
    """
    pieces = data.split(b'"')
    pieces[::2] = [piece.replace(b"\n", end) for piece in pieces[::2]]
    return b'"'.join(pieces)


class _EncodedSink:
    """Takes UTF-8 bytes and writes them in the requested encoding, counting bytes."""

    def __init__(self, sink: t.BinaryIO, encoding: str) -> None:
        self.sink = sink
        self.bytes_out = 0
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(
                f"Unknown encoding {encoding!r}: use 'utf-8', 'utf-8-sig' or a Python codec name."
            ) from None
        self._passthrough = name in ("utf-8", "utf-8-sig")
        if name == "utf-8-sig":
            self._raw(codecs.BOM_UTF8)
        self._decoder = None if self._passthrough else codecs.getincrementaldecoder("utf-8")()
        self._encoder = None if self._passthrough else codecs.getincrementalencoder(name)(errors="strict")
        self.encoding = name

    def write(self, data: bytes | memoryview) -> None:
        if self._passthrough:
            self._raw(data)
            return
        assert self._decoder is not None and self._encoder is not None
        text = self._decoder.decode(bytes(data))
        try:
            self._raw(self._encoder.encode(text))
        except UnicodeEncodeError as e:
            bad = e.object[e.start:e.end]
            raise ValueError(
                f"The data contains {bad!r}, which the {self.encoding} encoding cannot represent."
                " Export with encoding='utf-8' (or 'utf-8-sig' for Excel)."
            ) from None

    def finish(self) -> None:
        if self._encoder is not None and self._decoder is not None:
            self._raw(self._encoder.encode(self._decoder.decode(b"", final=True), final=True))

    def _raw(self, data: bytes | memoryview) -> None:
        self.sink.write(data)
        self.bytes_out += len(data)

    # What Arrow's writer needs to treat this as a Python file.
    closed = False

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True
