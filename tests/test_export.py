"""export_csv / export_parquet on every backend: round trips, routes, excel_safe, atomicity.

The table is this module's own (``export_rows``), holding the values that break naive CSV
writers: NULLs, unicode, commas, quotes, newlines, formulas, exact decimals, UTC timestamps.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import enum
import os
import signal
import subprocess
import sys
import typing as t

import pandas as pd
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from test_export_files import wait_until_writing

import analysis
from analysis.errors import ExportError, QueryError
from my_app.db import db

UTC = dt.timezone.utc
HYPERLINK = '=HYPERLINK("http://x","y")'


class Base(DeclarativeBase):
    pass


class Mood(enum.Enum):
    calm = "calm"
    busy = "busy"


class ExportRow(Base):
    __tablename__ = "export_rows"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.Text)
    amount: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(12, 2))
    ratio: Mapped[float | None] = mapped_column(sa.Float)
    flag: Mapped[bool | None] = mapped_column(sa.Boolean)
    seen_at: Mapped[dt.datetime | None] = mapped_column(
        sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    )
    day: Mapped[dt.date | None] = mapped_column(sa.Date)
    visits: Mapped[int | None] = mapped_column(sa.BigInteger)
    mood: Mapped[Mood | None] = mapped_column(sa.Enum(Mood, name="export_mood"))


ROWS = [
    dict(id=1, name='Zoë "Z" O\'Brien, Jr.', note="line one\nline two, with a comma", amount=decimal.Decimal("1234.50"),
         ratio=0.1, flag=True, seen_at=dt.datetime(2026, 1, 5, 9, 30, 0, 123456, tzinfo=UTC), day=dt.date(2026, 1, 5),
         visits=2**53 + 1, mood=Mood.calm),
    dict(id=2),  # NULL everywhere else
    dict(id=3, name="李 🙂 Grüße", note=HYPERLINK, amount=decimal.Decimal("-0.01"), ratio=-1.5e-07, flag=False,
         seen_at=dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), day=dt.date(1970, 1, 1), visits=-1, mood=Mood.busy),
    dict(id=4, name="  padded  ", note='a\r\nb "quoted"', amount=decimal.Decimal("0.00"), ratio=123456789012.0,
         flag=None, seen_at=None, day=None, visits=0, mood=None),
    dict(id=5, name="-5", note="+1 @x", amount=None, ratio=None, flag=True,
         seen_at=dt.datetime(2024, 2, 29, 0, 0, tzinfo=UTC), day=dt.date(2024, 2, 29), visits=None, mood=Mood.calm),
]
ORDERED = sa.select(ExportRow).order_by(ExportRow.id)


@pytest.fixture
def export_app(app: Flask) -> Flask:
    with app.app_context():
        Base.metadata.create_all(db.engine)
        with db.engine.begin() as conn:
            conn.execute(sa.insert(ExportRow), [{c: row.get(c) for c in ExportRow.__table__.columns.keys()} for row in ROWS])
    return app


@pytest.fixture
def wb(export_app: Flask) -> t.Iterator[analysis.Workbench]:
    workbench = analysis.connect(export_app)
    yield workbench
    workbench.close()


def read_back(path: t.Any, like: pd.DataFrame) -> pd.DataFrame:
    """``pandas.read_csv`` with the conversions the README documents, to compare with frame():
    timestamps parsed (ISO 8601), decimals read exactly, dates and enum values as text."""
    dtypes = {name: str(dtype) for name, dtype in like.dtypes.items()}
    stamps = [n for n, d in dtypes.items() if d.startswith("datetime64")]
    decimals = {n: (lambda v: decimal.Decimal(v) if v else None) for n, d in dtypes.items() if d.startswith("decimal")}
    # dtype_backend keeps integers with NULLs exact; with it, the README says to parse timestamps
    # afterwards (pandas 2 mishandles parse_dates then).
    frame = pd.read_csv(path, converters=decimals, dtype_backend="numpy_nullable")
    for name in stamps:
        text = frame[name].astype(object)
        frame[name] = pd.to_datetime(text.where(text.notna(), None), format="ISO8601")
    return frame


def comparable(frame: pd.DataFrame) -> dict[str, list[t.Any]]:
    """Column -> values as plain Python, missing values as None, dates and enums as text."""
    out: dict[str, list[t.Any]] = {}
    for name in frame.columns:
        values = []
        for value in frame[name].tolist():
            if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
                values.append(None)
            elif isinstance(value, pd.Timestamp):
                values.append(value.to_pydatetime())
            elif isinstance(value, (dt.date, enum.Enum)):
                values.append(value.isoformat() if isinstance(value, dt.date) else value.name)
            else:
                values.append(value)
        out[name] = values
    return out


def test_csv_round_trip_equals_frame(wb, tmp_path, backend):
    path = tmp_path / "rows.csv"
    result = wb.export_csv(ORDERED, path, excel_safe=False, progress=False)
    expected = wb.frame(ORDERED)
    assert result.rows == len(ROWS) and result.path == path and result.bytes == path.stat().st_size
    assert comparable(read_back(path, expected)) == comparable(expected)
    # The one documented loss: pandas reads an empty text field as missing, like NULL.


def test_every_route_writes_the_same_csv(wb, tmp_path, backend, monkeypatch):
    first = wb.export_csv(ORDERED, tmp_path / "best.csv", progress=False)
    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite.dbapi", None)
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)
    from analysis.export import export_csv

    second = export_csv(wb.session, ORDERED, tmp_path / "stream.csv", progress=False, method="stream")
    assert first.route == {"sqlite": "arrow", "postgresql": "copy", "mysql": "stream"}[backend]
    assert second.route == "stream"
    best, stream = (fields(tmp_path / name) for name in ("best.csv", "stream.csv"))
    # The same text in every field, except that floats may be spelled differently (1e-07 or
    # 1e-7): the shortest form that reads back to the same double, on each route.
    ratio = best[0].index("ratio")
    assert [[f for i, f in enumerate(row) if i != ratio] for row in best] == [
        [f for i, f in enumerate(row) if i != ratio] for row in stream
    ]
    assert [float(row[ratio] or "nan") for row in best[1:]] == pytest.approx(
        [float(row[ratio] or "nan") for row in stream[1:]], rel=0, abs=0, nan_ok=True
    )


def fields(path: t.Any) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def records(path: t.Any) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["id"]: row for row in csv.DictReader(f)}


def test_excel_safe_neutralises_formulas_and_only_text(wb, tmp_path, backend):
    wb.export_csv(ORDERED, tmp_path / "safe.csv", progress=False)
    wb.export_csv(ORDERED, tmp_path / "raw.csv", excel_safe=False, progress=False)
    safe, raw = (records(tmp_path / name) for name in ("safe.csv", "raw.csv"))
    assert safe["3"]["note"] == "'" + HYPERLINK and raw["3"]["note"] == HYPERLINK
    assert (safe["5"]["name"], safe["5"]["note"]) == ("'-5", "'+1 @x")
    assert (raw["5"]["name"], raw["5"]["note"]) == ("-5", "+1 @x")
    # Numbers stay numbers, negative or not.
    assert (safe["3"]["amount"], safe["3"]["visits"], safe["3"]["ratio"]) == ("-0.01", "-1", raw["3"]["ratio"])


def test_csv_spelling_is_iso_and_quoted_text(wb, tmp_path, backend):
    wb.export_csv(sa.select(ExportRow).where(ExportRow.id.in_([1, 2])).order_by(ExportRow.id), tmp_path / "x.csv", progress=False)
    lines = (tmp_path / "x.csv").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "id,name,note,amount,ratio,flag,seen_at,day,visits,mood"
    assert lines[1] == (
        '1,"Zoë ""Z"" O\'Brien, Jr.","line one'
    )
    assert lines[2] == (
        'line two, with a comma",1234.50,0.1,true,"2026-01-05T09:30:00.123456+00","2026-01-05",9007199254740993,"calm"'
    )
    assert lines[3] == "2,,,,,,,,," and lines[4] == ""


def test_parquet_round_trip_keeps_types(wb, tmp_path, backend):
    path = tmp_path / "rows.parquet"
    result = wb.export_parquet(ORDERED, path, progress=False)
    back = pd.read_parquet(path, dtype_backend="numpy_nullable")
    expected = wb.frame(ORDERED)
    assert result.rows == len(ROWS)
    assert list(back.columns) == list(expected.columns)
    assert comparable(back) == comparable(expected)
    assert str(back["seen_at"].dtype) == "datetime64[us, UTC]" and str(back["visits"].dtype) == "Int64"
    assert back["amount"].tolist()[0] == decimal.Decimal("1234.50")


def test_empty_results_have_a_header_and_a_schema(wb, tmp_path, backend):
    nothing = sa.select(ExportRow).where(ExportRow.id < 0)
    assert wb.export_csv(nothing, tmp_path / "none.csv", progress=False).rows == 0
    assert (tmp_path / "none.csv").read_text() == "id,name,note,amount,ratio,flag,seen_at,day,visits,mood\n"
    assert wb.export_parquet(nothing, tmp_path / "none.parquet", progress=False).rows == 0
    assert list(pd.read_parquet(tmp_path / "none.parquet").columns) == list(ExportRow.__table__.columns.keys())


@pytest.mark.backends("sqlite")
def test_compression_and_encoding_follow_the_file_name_and_options(wb, tmp_path):
    plain = tmp_path / "rows.csv"
    wb.export_csv(ORDERED, plain, progress=False)
    for name in ("rows.csv.gz", "rows.csv.zip", "rows.zip"):
        wb.export_csv(ORDERED, tmp_path / name, progress=False)
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name), pd.read_csv(plain))
    wb.export_csv(ORDERED, tmp_path / "excel.csv", encoding="utf-8-sig", progress=False)
    assert (tmp_path / "excel.csv").read_bytes() == b"\xef\xbb\xbf" + plain.read_bytes()
    with pytest.raises(ExportError, match="cannot represent"):
        wb.export_csv(ORDERED, tmp_path / "latin.csv", encoding="latin-1", progress=False)
    assert not (tmp_path / "latin.csv").exists()


@pytest.mark.backends("sqlite", "postgresql")
def test_raw_sql_with_parameters(wb, tmp_path):
    result = wb.export_csv(
        "SELECT id, name FROM export_rows WHERE id >= :low ORDER BY id", tmp_path / "sql.csv",
        params={"low": 4}, progress=False,
    )
    assert result.rows == 2
    assert (tmp_path / "sql.csv").read_text(encoding="utf-8") == 'id,name\n4,"  padded  "\n5,"\'-5"\n'


@pytest.mark.backends("sqlite", "postgresql")
def test_export_sees_the_sessions_uncommitted_writes(export_app, tmp_path):
    with analysis.connect(export_app, writable=True) as wb:
        wb.session.add(ExportRow(id=99, name="not committed yet"))
        wb.session.flush()
        result = wb.export_csv(sa.select(ExportRow.name).where(ExportRow.id == 99), tmp_path / "w.csv", progress=False)
        assert result.rows == 1 and "not committed yet" in (tmp_path / "w.csv").read_text()
        wb.session.rollback()


FAILING_SQL = {
    # Each fails after some rows have been produced, so a half-written file would exist.
    "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000)"
              " SELECT x, CASE WHEN x < 150000 THEN x ELSE abs(-9223372036854775807 - 1) END AS y FROM n",
    "postgresql": "SELECT x, 1 / (150000 - x) AS y FROM generate_series(1, 200000) AS x",
    # MariaDB: exp() overflows past 709.78, at row 283,912 (seq_* tables are MariaDB's sequences).
    "mysql": "SELECT seq AS x, EXP(seq / 400) AS y FROM seq_1_to_300000",
}


def test_a_failing_query_leaves_the_previous_file_and_no_temporary(wb, tmp_path, backend):
    target = tmp_path / "out" / "out.csv"
    target.parent.mkdir()
    target.write_text("previous export\n")
    with pytest.raises(QueryError) as info:
        wb.export_csv(FAILING_SQL[backend], target, chunksize=10_000, progress=False)
    assert "rejected" in str(info.value)
    assert target.read_text() == "previous export\n"
    assert os.listdir(target.parent) == ["out.csv"]
    assert wb.frame("SELECT 1 AS one")["one"].tolist() == [1]  # the Workbench still works


BIG_SQL = {
    "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5000000)"
              " SELECT x, 'row number ' || x AS label FROM n",
    "postgresql": "SELECT x, 'row number ' || x AS label FROM generate_series(1, 5000000) AS x",
    "mysql": "SELECT seq AS x, CONCAT('row number ', seq) AS label FROM seq_1_to_5000000",
}


def test_killing_the_export_process_midway_keeps_the_previous_file(export_app, tmp_path, backend):
    """``flask export`` killed with SIGKILL while writing: old file intact, nothing else."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / "big.csv"
    target.write_text("previous export\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MY_APP_", "FLASK_"))}
    env["MY_APP_SQLALCHEMY_DATABASE_URI"] = export_app.config["SQLALCHEMY_DATABASE_URI"]
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "my_app", "export", str(target), "--sql", BIG_SQL[backend],
         "--no-progress"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_until_writing(process.pid, out, timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, stderr
    assert target.read_text() == "previous export\n"
    assert os.listdir(out) == ["big.csv"]


@pytest.mark.backends("postgresql")
def test_exports_leave_no_transaction_open(wb, tmp_path):
    from testing_backends import pg_admin_connection

    wb.export_csv(ORDERED, tmp_path / "a.csv", progress=False)
    wb.export_parquet(ORDERED, tmp_path / "a.parquet", progress=False)
    with pytest.raises(QueryError):
        wb.export_csv("SELECT 1 / 0 AS boom", tmp_path / "b.csv", progress=False)
    wb.release()
    with pg_admin_connection() as admin:
        states = admin.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name LIKE %s", (wb.application_name[:40] + "%",)
        ).fetchall()
    assert states and all(state == "idle" for (state,) in states), states
