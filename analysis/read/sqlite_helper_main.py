"""The helper process behind :mod:`analysis.read.sqlite_helper`; run as a script, not imported.

Protocol on stdin/stdout: ``READY`` once started, then one request at a time:

* request: 8-byte big-endian length, then a pickled dict ``{uri, sql, params, batch_rows}``;
* reply: one status line, ``OK`` or ``ERR <message>``; after ``OK`` an Arrow IPC stream of the
  result, then a trailer line, ``END`` or ``ERR <message>`` (the driver failed midway).

It uses the driver's low-level API and nanoarrow to write the stream: no pyarrow, no pandas,
so the process stays near 15 MB plus the batch in flight, and starts quickly. It exits when
its parent closes stdin (or dies).
"""

import contextlib
import pickle
import struct
import sys


def main() -> None:
    import adbc_driver_manager
    import adbc_driver_sqlite
    import nanoarrow.ipc

    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the protocol stream
    # Load and initialise the driver library now, while nobody waits for a result.
    adbc_driver_sqlite.connect(":memory:").close()
    _line(stdout, "READY")
    while True:
        header = stdin.read(8)
        if len(header) < 8:
            return  # the parent is gone or done
        (size,) = struct.unpack(">Q", header)
        request = pickle.loads(stdin.read(size))
        with contextlib.ExitStack() as resources:
            try:
                database = resources.enter_context(adbc_driver_sqlite.connect(request["uri"]))
                connection = resources.enter_context(adbc_driver_manager.AdbcConnection(database))
                statement = resources.enter_context(adbc_driver_manager.AdbcStatement(connection))
                statement.set_options(**{"adbc.sqlite.query.batch_rows": str(request["batch_rows"])})
                statement.set_sql_query(request["sql"])
                if request["params"]:
                    statement.bind(_parameters(request["params"]))
                handle, _ = statement.execute_query()
            except Exception as e:
                reason = _one_line(e)
                # Some ADBC builds report a failed statement as "INTERNAL: (unknown error)" and
                # give SQLite's own message ("attempt to write a readonly database") only when
                # the statement is finalized: report both, and keep the process serving.
                try:
                    resources.close()
                except Exception as finalizing:
                    reason += "; " + _one_line(finalizing)
                _line(stdout, "ERR " + reason)
                continue
            _line(stdout, "OK")
            writer = nanoarrow.ipc.StreamWriter.from_writable(stdout)
            failure = None
            try:
                writer.write_stream(handle)
            except Exception as e:
                failure = e
            writer.close()  # writes the end-of-stream marker, also after a failure
            stdout.flush()
            # ADBC before 1.3 has no release(): the handle releases the stream when collected.
            release = getattr(handle, "release", None)
            if release is not None:
                release()
            del handle
            _line(stdout, "END" if failure is None else "ERR " + _one_line(failure))


def _parameters(values: "tuple[object, ...]") -> object:
    """One row of positional parameters as an Arrow struct array, for ``bind``."""
    import nanoarrow as na

    types, children = {}, []
    for i, value in enumerate(values):
        if value is None:
            type_ = na.null()
            child = na.c_array_from_buffers(type_, 1, [])
        else:
            if isinstance(value, bool):
                value = int(value)
            type_ = {int: na.int64(), float: na.float64(), str: na.string(), bytes: na.binary()}.get(type(value))
            if type_ is None:
                raise TypeError(f"cannot bind a {type(value).__name__} parameter")
            child = na.c_array([value], type_)
        types[str(i)] = type_
        children.append(child)
    return na.c_array_from_buffers(na.struct(types), 1, [None], children=children)


def _line(stream: "object", text: str) -> None:
    stream.write(text.encode("utf-8", "replace") + b"\n")  # type: ignore[attr-defined]
    stream.flush()  # type: ignore[attr-defined]


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
