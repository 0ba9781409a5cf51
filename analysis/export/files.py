"""Where an export's bytes go: the file name's format and compression, and the checks made
before any query runs.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import typing as t
import zipfile
from pathlib import Path

from ..errors import ExportError

COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zip": "zip"}
PARQUET_SUFFIXES = (".parquet", ".pq")


Format = t.Literal["csv", "parquet"]


def output_format(path: str | os.PathLike[str]) -> Format:
    """``"csv"`` or ``"parquet"``, from the file name; :class:`ExportError` if neither."""
    if Path(path).is_dir():
        check_target(Path(path))
    name = Path(path).name.lower()
    stem = name
    for suffix in COMPRESSIONS:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if stem.endswith(PARQUET_SUFFIXES) and stem == name:
        return "parquet"
    if stem.endswith(".csv") or (stem != name and "." not in stem):
        return "csv"
    raise ExportError(
        f"Cannot tell the file format from {Path(path).name!r}: name it .csv, .csv.gz, .csv.zip"
        " or .parquet."
    )


def compression_options(path: Path, compression: str | dict[str, t.Any] | None) -> dict[str, t.Any] | None:
    """``compression`` as pandas takes it (``"infer"``, ``None``, ``"gzip"``, ``"zip"`` or a
    dict with ``"method"``), as ``{"method": ..., **options}`` or ``None``."""
    if isinstance(compression, dict):
        options = dict(compression)
        method = options.pop("method", None)
    else:
        method, options = compression, {}
    if method == "infer":
        method = COMPRESSIONS.get(path.suffix.lower())
    if method is None:
        return None
    if method not in ("gzip", "zip"):
        raise ExportError(f"Unknown compression {method!r}: use 'infer', None, 'gzip' or 'zip'.")
    return {"method": method, **options}


@contextlib.contextmanager
def compressed(raw: t.BinaryIO, compression: dict[str, t.Any] | None, path: Path) -> t.Iterator[t.BinaryIO]:
    """A stream that compresses into ``raw`` (a zip archive holds one member, ``users.csv``)."""
    if compression is None:
        yield raw
        return
    options = dict(compression)
    method = options.pop("method")
    if method == "gzip":
        # zlib's default level: close to level 9's size at a third of its time.
        level = options.pop("compresslevel", 6)
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, filename=inner_name(path), **options) as gz:
            yield t.cast(t.BinaryIO, gz)
        return
    level = options.pop("compresslevel", 6)
    archive_name = options.pop("archive_name", inner_name(path))
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level, **options) as archive:
        with archive.open(archive_name, "w", force_zip64=True) as member:
            yield t.cast(t.BinaryIO, member)


def inner_name(path: Path) -> str:
    """``users.csv.gz`` -> ``users.csv``; ``users.zip`` -> ``users.csv``."""
    stem = path.name[: -len(path.suffix)] if path.suffix.lower() in COMPRESSIONS else path.name
    return stem if "." in stem else stem + ".csv"


def check_target(path: Path) -> None:
    """Fail before any query runs if ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ExportError(
            f"Cannot write {str(path)!r}: it is a directory. Give a file name, such as"
            f" {str(path / 'export.csv')!r}."
        )
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ExportError(f"Cannot write {str(path)!r}: the directory {str(parent)!r} {what}. Create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot write {str(path)!r}: no permission to create files in {str(parent)!r}.")


def check_encoding(encoding: str) -> None:
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ExportError(
            f"Unknown encoding {encoding!r}: use 'utf-8', 'utf-8-sig' (UTF-8 with a BOM, for"
            " Excel) or another Python codec name."
        ) from None


def size_text(n: int) -> str:
    """``88.2 kB``: a size for people, in powers of 1000."""
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} bytes"  # pragma: no cover
