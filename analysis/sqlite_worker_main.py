"""The helper process behind :mod:`analysis.sqlite_worker`; run as a script, not imported.

Protocol on stdin/stdout: ``READY`` once started, then one request at a time:

* request: 8-byte big-endian length, then a pickled dict ``{uri, sql, params, batch_rows}``;
* reply: one status line, ``OK`` or ``ERR <message>``; after ``OK`` an Arrow IPC stream of the
  result, then a trailer line, ``END`` or ``ERR <message>`` (the driver failed midway).

It imports nothing but pyarrow and the ADBC driver (quick to start) and exits when its parent
closes stdin.
"""

import contextlib
import pickle
import struct
import sys


def main() -> None:
    # The driver's low-level API: its DBAPI layer would import pandas (60 MB) for nothing.
    import adbc_driver_manager
    import adbc_driver_sqlite
    import pyarrow as pa

    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the protocol stream
    sink = pa.PythonFile(stdout, mode="w")
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
                params = request["params"]
                if params:
                    statement.bind(
                        pa.record_batch([[value] for value in params], names=[str(i) for i in range(len(params))])
                    )
                handle, _ = statement.execute_query()
                reader = pa.RecordBatchReader._import_from_c(handle.address)
            except Exception as e:
                _line(stdout, "ERR " + _one_line(e))
                continue
            _line(stdout, "OK")
            writer = pa.ipc.new_stream(sink, reader.schema)
            failure = None
            try:
                for batch in reader:
                    writer.write_batch(batch)
            except Exception as e:
                failure = e
            writer.close()
            stdout.flush()
            reader.close()
            _line(stdout, "END" if failure is None else "ERR " + _one_line(failure))


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
