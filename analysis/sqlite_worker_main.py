"""The helper process behind :mod:`analysis.sqlite_worker`; run as a script, not imported.

Protocol on stdin/stdout, one request at a time:

* request: 8-byte big-endian length, then a pickled dict ``{uri, sql, params, batch_rows}``;
* reply: one status line, ``OK`` or ``ERR <message>``; after ``OK`` an Arrow IPC stream of the
  result, then a trailer line, ``END`` or ``ERR <message>`` (the driver failed midway).

It imports nothing but pyarrow and the ADBC driver (quick to start) and exits when its parent
closes stdin.
"""

import pickle
import struct
import sys


def main() -> None:
    import adbc_driver_sqlite.dbapi
    import pyarrow as pa

    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the protocol stream
    sink = pa.PythonFile(stdout, mode="w")
    while True:
        header = stdin.read(8)
        if len(header) < 8:
            return  # the parent is gone or done
        (size,) = struct.unpack(">Q", header)
        request = pickle.loads(stdin.read(size))
        try:
            conn = adbc_driver_sqlite.dbapi.connect(request["uri"], autocommit=True)
        except Exception as e:
            _line(stdout, "ERR " + _one_line(e))
            continue
        try:
            cursor = conn.cursor()
            try:
                cursor.adbc_statement.set_options(
                    **{"adbc.sqlite.query.batch_rows": str(request["batch_rows"])}
                )
                cursor.execute(request["sql"], request["params"] or None)
                reader = cursor.fetch_record_batch()
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
            _line(stdout, "END" if failure is None else "ERR " + _one_line(failure))
            cursor.close()
        finally:
            conn.close()


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
