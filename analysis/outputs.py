"""Where an export's bytes go: the file name's format and compression, the checks made before
any query runs, and the progress bar.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import typing as t
import zipfile
from pathlib import Path

from .errors import ExportError

#: Exports show a progress bar once they pass this many rows (or bytes, on the COPY route).
PROGRESS_ROWS = 100_000
PROGRESS_BYTES = 8 * 1024 * 1024

COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zip": "zip"}
PARQUET_SUFFIXES = (".parquet", ".pq")


def output_format(path: str | os.PathLike[str]) -> str:
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


@contextlib.contextmanager
def progress_bar(enabled: bool, path: Path, *, unit: str) -> t.Iterator[t.Callable[[int], None]]:
    """A tqdm bar (stderr, or a widget in notebooks) that appears only once the export is
    big enough to be worth watching; small exports print nothing."""
    if not enabled:
        yield lambda n: None
        return
    bar = LazyBar(path.name, unit=unit)
    try:
        yield bar.update
    finally:
        bar.close()


class LazyBar:
    """Counts rows (or bytes) and shows a tqdm bar once past the threshold."""

    def __init__(self, description: str, *, unit: str) -> None:
        self.description = description
        self.bytes = unit == "B"
        self.threshold = PROGRESS_BYTES if self.bytes else PROGRESS_ROWS
        self.count = 0
        self._bar: t.Any = None

    def update(self, n: int) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.count > self.threshold:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                desc=self.description, unit="B" if self.bytes else " rows", unit_scale=True,
                unit_divisor=1024 if self.bytes else 1000, initial=self.count, leave=False,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def check_target(path: Path) -> None:
    """Fail before any query runs if ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ExportError(f"Cannot write {str(path)!r}: it is a directory. Give a file name, such as {str(path / 'export.csv')!r}.")
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
