"""Hive-partitioned Parquet datasets (``kind=purchase/part-0.parquet``), atomic as a whole.

The rows stream from the read path into :func:`pyarrow.dataset.write_dataset`, which keeps one
file open per partition value it meets; readers (pyarrow.dataset, Dask, Polars, DuckDB, Spark)
find the partition columns in the directory names. The dataset is written into a hidden
directory beside ``path`` (``.events.<pid>.<random>.tmp``) and renamed to ``path`` only when
complete; an earlier dataset at ``path`` is swapped out in the same step (Linux
``renameat2(RENAME_EXCHANGE)``; elsewhere two renames) and then removed. After an error or
Ctrl-C the hidden directory is removed; after ``kill -9`` it stays hidden and the next export
to the same path removes it. Either way no dataset, or the earlier one, is at ``path``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import sys
import typing as t
from pathlib import Path

from ..errors import ExportError

if t.TYPE_CHECKING:
    import pyarrow as pa

_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.(tmp|old)$")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
#: Column kinds that make readable directory names.
PARTITION_KINDS = ("int", "bool", "string", "enum", "date")


def check_partition_by(
    partition_by: t.Sequence[str] | str, names: list[str], kinds: t.Mapping[str, str]
) -> list[str]:
    """The partition columns as a list; :class:`ExportError` for an unknown or unsuitable one."""
    columns = [partition_by] if isinstance(partition_by, str) else list(partition_by)
    if not columns:
        raise ExportError("partition_by= names no column: give one or more of the query's columns.")
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise ExportError(
            f"partition_by=: no column named {', '.join(map(repr, unknown))}; the query's columns"
            f" are {', '.join(names)}."
        )
    if len(columns) == len(names):
        raise ExportError("partition_by= names every column: leave at least one column for the files.")
    unsuitable = [c for c in columns if kinds.get(c, "raw") not in PARTITION_KINDS and kinds.get(c) != "raw"]
    if unsuitable:
        raise ExportError(
            f"Cannot partition by {', '.join(map(repr, unsuitable))} ({', '.join(kinds[c] for c in unsuitable)}):"
            " partition by text, Enum, integer, boolean or date columns (derive one in the query,"
            " e.g. sa.func.date(Event.occurred_at).label('day'))."
        )
    return columns


def write_dataset(
    target: Path,
    tables: t.Iterator[pa.Table],
    partition_by: list[str],
    *,
    compression: str | None,
    on_rows: t.Callable[[int], None] = lambda n: None,
) -> int:
    """Write ``tables`` (one schema) as a hive-partitioned dataset at ``target``; atomic."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    rows = 0
    first = next(tables, None)
    with atomic_directory(target) as temporary:
        if first is None:
            return 0
        schema = _partition_friendly(first).schema

        def batches() -> t.Iterator[pa.RecordBatch]:
            nonlocal rows
            for table in _chain(first, tables):
                table = _partition_friendly(table)
                if table.schema != schema:
                    table = table.cast(schema)
                rows += table.num_rows
                on_rows(table.num_rows)
                yield from table.to_batches()

        partitioning = ds.partitioning(pa.schema([schema.field(c) for c in partition_by]), flavor="hive")
        ds.write_dataset(
            pa.RecordBatchReader.from_batches(schema, batches()), temporary, format="parquet",
            partitioning=partitioning, basename_template="part-{i}.parquet", existing_data_behavior="error",
            file_options=ds.ParquetFileFormat().make_write_options(compression=compression or "none"),
            max_partitions=100_000, create_dir=True,
        )
    return rows


def _chain(first: pa.Table, rest: t.Iterator[pa.Table]) -> t.Iterator[pa.Table]:
    yield first
    yield from rest


def _partition_friendly(table: pa.Table) -> pa.Table:
    """Dictionary (Enum) columns as text: directory names hold values, not codes."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


def dataset_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@contextlib.contextmanager
def atomic_directory(target: Path) -> t.Iterator[Path]:
    """Yield a hidden directory beside ``target``; on a clean exit it becomes ``target``."""
    parent = target.parent if str(target.parent) else Path(".")
    _remove_stale(parent, target.name)
    temporary = parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    temporary.mkdir()
    try:
        yield temporary
        _fsync_tree(temporary)
        _replace_directory(temporary, target)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def _replace_directory(new: Path, target: Path) -> None:
    if not target.exists():
        os.rename(new, target)
        return
    if not target.is_dir() or not (any(target.rglob("*.parquet")) or not any(target.iterdir())):
        raise ExportError(
            f"Cannot write the dataset to {str(target)!r}: it exists and is not a Parquet dataset. Choose another path."
        )
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now the earlier dataset
        return
    old = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.old"
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); ``False`` where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


def _fsync_tree(path: Path) -> None:
    for directory, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                os.fsync(f.fileno())


def _remove_stale(parent: Path, name: str) -> None:
    """Remove hidden directories of earlier exports to ``name`` whose process is gone."""
    from .atomic import _process_exists

    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        match = _TMP_NAME.match(entry)
        if match is None or match["name"] != name or _process_exists(int(match["pid"])):
            continue
        shutil.rmtree(parent / entry, ignore_errors=True)
