"""The file side of exports, without a database: atomic output and the CSV spelling."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.export.atomic import atomic_output
from analysis.export.csv import CsvWriter, neutralise


def write_csv(frame: pd.DataFrame, **options) -> bytes:
    buffer = io.BytesIO()
    writer = CsvWriter(buffer, list(frame.columns), **options)
    writer.write_header()
    writer.write_frame(frame)
    writer.close()
    return buffer.getvalue()


# -- atomic output -----------------------------------------------------------------------------


def test_atomic_output_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    with atomic_output(target) as f:
        f.write(b"new ")
        assert target.read_bytes() == b"old"
        f.write(b"content")
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_output_keeps_the_old_file_on_error_or_interrupt(tmp_path, error):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    with pytest.raises(type(error)):
        with atomic_output(target) as f:
            f.write(b"half")
            raise error
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_atomic_output_creates_nothing_when_it_fails_before_the_first_write(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "new.csv"):
            raise RuntimeError("the query failed")
    assert os.listdir(tmp_path) == []


def test_atomic_output_into_a_missing_directory_raises_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_output(tmp_path / "missing" / "out.csv") as f:
            f.write(b"x")
    assert os.listdir(tmp_path) == []


def test_atomic_output_survives_sigkill_midway(tmp_path):
    """A process killed while writing leaves the old file and nothing else."""
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    script = textwrap.dedent(
        f"""
        from analysis.export.atomic import atomic_output
        with atomic_output({str(target)!r}) as f:
            while True:
                f.write(b"x" * 65536)
                f.flush()
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_until_writing(process.pid, tmp_path)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.csv"]


def wait_until_writing(pid: int, directory, timeout: float = 20.0) -> None:
    """Wait until process ``pid`` has written bytes to a file in ``directory``."""
    deadline = time.monotonic() + timeout
    fds = f"/proc/{pid}/fd"
    while time.monotonic() < deadline:
        try:
            for fd in os.listdir(fds):
                link = os.readlink(os.path.join(fds, fd))
                if link.startswith(str(directory)) and os.stat(os.path.join(fds, fd)).st_size > 0:
                    return
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not start writing in {directory}")


def test_leftovers_of_killed_processes_are_removed_on_the_next_write(tmp_path):
    # What the named fallback (no O_TMPFILE) would leave behind after kill -9.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.csv.{int(dead.stdout)}.0123abcd.tmp"
    other = tmp_path / f".other.csv.{int(dead.stdout)}.0123abcd.tmp"
    stale.write_bytes(b"half")
    other.write_bytes(b"not ours to judge")
    with atomic_output(tmp_path / "out.csv") as f:
        f.write(b"new")
    assert sorted(os.listdir(tmp_path)) == sorted(["out.csv", other.name])


# -- the CSV spelling --------------------------------------------------------------------------


def test_csv_spelling_of_every_kind_of_value():
    frame = pd.DataFrame(
        {
            "id": pd.array([1, None], dtype="Int64"),
            "text": ['He said "hi", then left\nfor good', None],
            "empty": ["", None],
            "price": [decimal.Decimal("12.50"), None],
            "score": [0.1, None],
            "flag": pd.array([True, None], dtype="boolean"),
            "at": pd.to_datetime(["2026-01-05 09:30:00.000001+00:00", None], utc=True),
            "naive": pd.to_datetime(["2026-01-05 09:30:00", None]),
            "day": [dt.date(2026, 1, 5), None],
            "blob": [b"\x00\xff", None],
        }
    )
    assert write_csv(frame).decode() == (
        "id,text,empty,price,score,flag,at,naive,day,blob\n"
        '1,"He said ""hi"", then left\nfor good","",12.50,0.1,true,"2026-01-05T09:30:00.000001+00",'
        '"2026-01-05T09:30:00","2026-01-05","\\x00ff"\n'
        ",,,,,,,,,\n"
    )


def test_excel_safe_neutralises_formulas_in_text_but_never_numbers():
    frame = pd.DataFrame(
        {
            "note": ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "a=b", "1-2"],
            "amount": [-1, -2, -3, -4, -5, -6, -7, -8],
        }
    )
    safe = list(csv.reader(io.StringIO(write_csv(frame).decode())))
    verbatim = list(csv.reader(io.StringIO(write_csv(frame, excel_safe=False).decode())))
    assert [row[0] for row in safe[1:]] == [
        "'=HYPERLINK(\"http://x\",\"y\")", "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "a=b", "1-2"
    ]
    assert [row[0] for row in verbatim[1:]] == list(frame["note"])
    assert [row[1] for row in safe[1:]] == [str(v) for v in frame["amount"]]


def test_mixed_columns_are_neutralised_cell_by_cell():
    # SQLite lets one column hold numbers and text; only the text is neutralised.
    frame = pd.DataFrame({"v": pd.Series([-5, "-5", "=1", 2.5, None], dtype=object)})
    rows = list(csv.reader(io.StringIO(write_csv(frame).decode())))
    assert [r[0] if r else "" for r in rows[1:]] == ["-5", "'-5", "'=1", "2.5", ""]


# Python 3.10's csv module cannot read a NUL character (3.11 can); the writer writes it as it is.
_TEXT = st.text() if sys.version_info >= (3, 11) else st.text(st.characters(blacklist_characters="\x00"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), _TEXT), min_size=1, max_size=20))
def test_any_text_round_trips_through_a_csv_reader(values):
    frame = pd.DataFrame({"value": pd.Series(values, dtype=object), "n": range(len(values))})
    for excel_safe in (False, True):
        text = write_csv(frame, excel_safe=excel_safe).decode()
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == ["value", "n"]
        expected = ["" if v is None else (neutralise(v) if excel_safe else v) for v in values]
        assert [row[0] for row in rows[1:]] == expected
        assert [int(row[1]) for row in rows[1:]] == list(range(len(values)))


def test_utf8_sig_starts_with_a_bom_and_other_encodings_refuse_what_they_cannot_spell():
    frame = pd.DataFrame({"name": ["Zoë"]})
    assert write_csv(frame, encoding="utf-8-sig") == b"\xef\xbb\xbfname\n\"Zo\xc3\xab\"\n"
    assert write_csv(frame, encoding="latin-1") == b'name\n"Zo\xeb"\n'
    with pytest.raises(ValueError, match="cannot represent"):
        write_csv(pd.DataFrame({"name": ["李"]}), encoding="latin-1")


def test_crlf_line_endings_on_request():
    frame = pd.DataFrame({"a": ["x\ny"], "b": [1]})
    assert write_csv(frame, lineterminator="\r\n") == b'a,b\r\n"x\ny",1\r\n'
