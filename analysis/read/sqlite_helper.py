"""ADBC's SQLite driver, run in a helper process of its own.

``adbc-driver-sqlite`` bundles its own copy of SQLite. Two SQLite libraries in one process do
not know about each other's POSIX file locks, and closing *any* file descriptor on a file drops
*every* lock the process holds on it. So when an in-process ADBC connection closes, the locks of
Python's ``sqlite3`` connections to the same database (the app's pool) silently vanish; another
process (the web app, a cron job) then believes it is the last user, checkpoints and deletes the
WAL under them, and they fail with "disk I/O error" -- commits made afterwards can be lost.

In a process of its own, ADBC's opens, locks and closes touch nobody else's. The results come
back as an Arrow IPC stream over a pipe, which costs a copy but no conversion. One worker is
kept per process and started ahead of need; a second request while it is busy (an unfinished
``frames()`` iterator) gets a worker of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import struct
import subprocess
import sys
import threading
import typing as t

from ..errors import HelperError

if t.TYPE_CHECKING:
    import pyarrow as pa

try:
    import fcntl
except ImportError:  # Windows: default pipe sizes
    fcntl = None  # type: ignore[assignment]
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_PIPE_SIZE = 1 << 20
_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sqlite_helper_main.py")


class _Worker:
    def __init__(self) -> None:
        # -I: no user site-packages, no PYTHON* variables; the venv's packages still load.
        self.process = subprocess.Popen(
            [sys.executable, "-I", _SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        # Bigger pipes mean fewer context switches per megabyte (Linux; capped by
        # /proc/sys/fs/pipe-max-size, 1 MiB by default).
        for stream in (self.process.stdout, self.process.stdin) if fcntl is not None else ():
            with contextlib.suppress(OSError, AttributeError, ValueError):
                fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)  # type: ignore[union-attr]

        self.ready = False

    def wait_ready(self) -> None:
        """Block until the worker has loaded its driver (it says ``READY``)."""
        if not self.ready:
            line = self.readline()
            if line != "READY":
                raise HelperError(f"the SQLite reader process did not start: {line}")
            self.ready = True

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, request: dict[str, t.Any]) -> None:
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        assert self.process.stdin is not None
        self.process.stdin.write(struct.pack(">Q", len(payload)) + payload)
        self.process.stdin.flush()

    def readline(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise HelperError("the SQLite reader process exited unexpectedly")
        return line.decode("utf-8", "replace").rstrip("\n")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class _Pool:
    """One idle worker kept warm; more are made while it is busy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: _Worker | None = None

    def warm_up(self, wait: bool = False) -> None:
        with self._lock:
            if self._idle is None or not self._idle.alive:
                self._idle = _Worker()
            if wait:
                self._idle.wait_ready()

    def take(self) -> _Worker:
        with self._lock:
            worker, self._idle = self._idle, None
        if worker is None or not worker.alive:
            worker = _Worker()
        return worker

    def give_back(self, worker: _Worker) -> None:
        with self._lock:
            if self._idle is None and worker.alive:
                self._idle = worker
                return
        worker.stop()

    def shutdown(self) -> None:
        with self._lock:
            worker, self._idle = self._idle, None
        if worker is not None:
            worker.stop()


_pool = _Pool()
atexit.register(_pool.shutdown)


def warm_up(wait: bool = False) -> None:
    """Start a worker now so that the first read does not wait for it (``wait=True``: and
    return only once it is ready, as a benchmark's set-up would)."""
    _pool.warm_up(wait)


def shutdown() -> None:
    """Stop the idle worker (idempotent; also done at interpreter exit)."""
    _pool.shutdown()


@contextlib.contextmanager
def read(
    uri: str, sql: str, params: tuple[t.Any, ...], *, batch_rows: int
) -> t.Iterator[pa.RecordBatchReader]:
    """Run ``sql`` in a worker on the database at ``uri`` and yield a reader of its batches.

    Raises :class:`HelperError` if the driver refuses the statement; a failure midway is
    raised by the reader, with the driver's message. Leaving the block before the stream is
    read to the end stops that worker (it cannot be interrupted mid-stream otherwise).
    """
    import pyarrow as pa

    worker = _pool.take()
    finished = False
    try:
        try:
            worker.wait_ready()
            worker.send({"uri": uri, "sql": sql, "params": params, "batch_rows": batch_rows})
            status = worker.readline()
            if status != "OK":
                finished = True
                raise HelperError(status.removeprefix("ERR "))
            assert worker.process.stdout is not None
            stream = pa.ipc.open_stream(pa.PythonFile(worker.process.stdout, mode="r"))
        except (BrokenPipeError, pa.ArrowInvalid) as e:
            raise HelperError(f"the SQLite reader process failed: {e}") from e

        def batches() -> t.Iterator[pa.RecordBatch]:
            # Only errors of the stream itself are the worker's; the caller's own pass through.
            nonlocal finished
            try:
                yield from stream
            except (OSError, pa.ArrowInvalid) as e:
                raise HelperError(f"the SQLite reader process failed: {e}") from e
            trailer = worker.readline()
            finished = True
            if trailer != "END":
                raise HelperError(trailer.removeprefix("ERR "))

        yield pa.RecordBatchReader.from_batches(stream.schema, batches())
    finally:
        if finished:
            _pool.give_back(worker)
        else:
            worker.stop()
