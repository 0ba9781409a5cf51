"""Write a file so that readers see either the old file or the whole new one, never half.

The new content goes to a temporary file in the target's directory (the same file system, so
the final rename is atomic), is flushed and fsync'ed, and only then replaces the target with
:func:`os.replace`. On an error or ``KeyboardInterrupt`` the temporary file is removed and the
target is untouched.

A ``SIGKILL`` (the OOM killer, ``kill -9``, a CI timeout) runs no cleanup code at all. On
Linux the temporary file is therefore created with ``O_TMPFILE``: it has no name until the
very end, so a killed process leaves nothing behind; the kernel frees it. Elsewhere, or on
file systems without ``O_TMPFILE``, it is a hidden named file (``.users.csv.<pid>.<random>.tmp``)
and the next write to the same target removes leftovers of processes that no longer exist.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import sys
import typing as t
from pathlib import Path

_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str]) -> t.Iterator[t.BinaryIO]:
    """Yield a binary file; on a clean exit it replaces ``target`` atomically.

    >>> with atomic_output("signups.csv") as f:
    ...     f.write(b"id\\n1\\n")

    Raises :class:`OSError` (with the target's path in the message) if the directory is
    missing or not writable; nothing is created in that case.
    """
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    _remove_stale_temporaries(directory, target.name)
    fd, temp_name = _open_temporary(directory, target.name)
    linked_name: str | None = temp_name
    try:
        with os.fdopen(fd, "wb", closefd=True) as f:
            yield t.cast(t.BinaryIO, f)
            f.flush()
            os.fsync(f.fileno())
            if temp_name is None:
                # Give the anonymous file a name only now that it is complete.
                linked_name = str(directory / _temporary_name(target.name))
                _link_anonymous(f.fileno(), linked_name)
        os.replace(linked_name, target)  # type: ignore[arg-type]
        linked_name = None
        _fsync_directory(directory)
    finally:
        if linked_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(linked_name)


def _open_temporary(directory: Path, name: str) -> tuple[int, str | None]:
    """An fd to write to, and its path (``None`` when the file is anonymous)."""
    o_tmpfile = getattr(os, "O_TMPFILE", None)
    if o_tmpfile is not None and sys.platform.startswith("linux"):
        try:
            return os.open(directory, o_tmpfile | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666), None
        except OSError as e:
            # EOPNOTSUPP/EISDIR/EINVAL: this file system cannot; fall back to a named file.
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP):
                raise
    path = str(directory / _temporary_name(name))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    return os.open(path, flags, 0o666), path


def _temporary_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _link_anonymous(fd: int, path: str) -> None:
    # os.link() calls link(2), which does not follow the /proc/self/fd symlink; linkat(2)
    # with AT_SYMLINK_FOLLOW is the documented way to name an O_TMPFILE file.
    libc = ctypes.CDLL(None, use_errno=True)
    source = f"/proc/self/fd/{fd}".encode()
    if libc.linkat(_AT_FDCWD, source, _AT_FDCWD, os.fsencode(path), _AT_SYMLINK_FOLLOW) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), path)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not possible (or needed) on every platform."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temporaries(directory: Path, name: str) -> None:
    """Remove temporaries for ``name`` left by processes that were killed."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = _TMP_NAME.match(entry)
        if match is None or match["name"] != name or _process_exists(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(directory / entry)


def _process_exists(pid: int) -> bool:
    # On Windows os.kill(pid, 0) would terminate the process: never sweep there.
    if pid == os.getpid() or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
