"""Workbench.insert_frame on real databases: dtypes and NULLs round-trip, all or nothing, clear errors."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import typing as t
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import analysis
from analysis.workbench import Workbench
from my_app.models import Data, Event, Plan, User
from my_app.models.types import UTCDateTime

pytestmark = pytest.mark.backends("sqlite", "postgresql")


# -- a second app with one column of every supported type --------------------------------------


class Color(enum.Enum):
    red = "r"
    green = "g"


class Base(DeclarativeBase):
    pass


kitchen_db = SQLAlchemy(model_class=Base)


class Everything(kitchen_db.Model):
    __tablename__ = "everything"

    id: Mapped[int] = mapped_column(primary_key=True)
    big: Mapped[int | None] = mapped_column(sa.BigInteger)
    small: Mapped[int | None] = mapped_column(sa.SmallInteger)
    ratio: Mapped[float | None] = mapped_column(sa.Float)
    price: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(10, 2))
    price_from_float: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(10, 2))
    flag: Mapped[bool | None]
    plain_flag: Mapped[bool]
    label: Mapped[str | None] = mapped_column(sa.String(50))
    note: Mapped[str | None] = mapped_column(sa.Text)
    happened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    naive_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    day: Mapped[dt.date | None]
    color: Mapped[Color | None] = mapped_column(sa.Enum(Color, name="color"))
    payload: Mapped[t.Any] = mapped_column(sa.JSON, nullable=True)
    blob: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    token: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    duration: Mapped[dt.timedelta | None] = mapped_column(sa.Interval)
    arrow_count: Mapped[int | None]
    default_text: Mapped[str] = mapped_column(sa.String(10), default="fallback")


@pytest.fixture
def kitchen(database_url: str) -> t.Iterator[Workbench]:
    app = Flask("kitchen")
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    kitchen_db.init_app(app)
    with app.app_context():
        kitchen_db.create_all()
    workbench = Workbench(app, writable=True, cell_hooks=False)
    workbench.open()
    yield workbench
    workbench.close()


@pytest.fixture
def wb(app: Flask) -> t.Iterator[Workbench]:
    workbench = Workbench(app, writable=True, cell_hooks=False)
    workbench.open()
    yield workbench
    workbench.close()


def count(wb: Workbench, model: type) -> int:
    return wb.session.scalar(sa.select(sa.func.count()).select_from(model))


def outside_count(wb: Workbench, table: str) -> int:
    """Counted on a new connection: what other clients see, i.e. what was committed."""
    engine = sa.create_engine(wb.engine.url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


def rich_frame() -> pd.DataFrame:
    """Three rows: values in the first and last, every nullable column missing in the middle."""
    berlin = pd.to_datetime(["2024-03-31 01:30:00.123456", None, "2024-10-27 02:15:00"], format="ISO8601")
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "big": pd.array([2**40, None, -(2**40)], dtype="Int64"),
            "small": np.array([1, 2, 3], dtype=np.int16),
            "ratio": [0.25, np.nan, -1e-9],
            "price": [decimal.Decimal("12.34"), None, decimal.Decimal("-0.50")],
            "price_from_float": [4148.5, np.nan, 0.1],
            "flag": pd.array([True, None, False], dtype="boolean"),
            "plain_flag": [True, False, True],
            "label": pd.Series(["a", None, "Zoë, \"quoted\"\ttab\\"], dtype="str"),
            "note": ["x" * 500, None, "line\nbreak"],
            "happened_at": pd.Series(berlin).dt.tz_localize("Europe/Berlin", ambiguous=[True, False, False]),
            "naive_at": pd.to_datetime(["2024-01-01 00:00:01", None, "1999-12-31 23:59:59.999999"], format="ISO8601"),
            "day": pd.to_datetime(["2024-02-29", None, "1970-01-01"]),
            "color": pd.Categorical(["red", None, "green"]),
            "payload": [{"a": [1, 2.5, None], "é": "ü"}, None, [1, "two"]],
            "blob": [b"\x00\x01\xff\\N", None, b""],
            "token": [uuid.UUID(int=1), None, uuid.UUID("12345678-1234-5678-1234-567812345678")],
            "duration": pd.to_timedelta(["1 days 02:03:04.000005", None, "-1 s"]),
            "arrow_count": pd.array([7, None, 0], dtype="int64[pyarrow]"),
        }
    )


def test_every_supported_dtype_round_trips_with_nulls(kitchen):
    assert kitchen.insert_frame(Everything, rich_frame()) == 3
    kitchen.session.commit()
    kitchen.session.expire_all()

    rows = {row.id: row for row in kitchen.session.execute(sa.select(Everything)).scalars()}
    first, empty, last = rows[1], rows[2], rows[3]
    assert first.big == 2**40 and last.big == -(2**40)
    assert (first.small, last.small) == (1, 3)
    assert first.ratio == 0.25 and last.ratio == pytest.approx(-1e-9)
    assert first.price == decimal.Decimal("12.34") and last.price == decimal.Decimal("-0.50")
    assert first.price_from_float == decimal.Decimal("4148.50") and last.price_from_float == decimal.Decimal("0.10")
    assert (first.flag, last.flag) == (True, False)
    assert (first.plain_flag, empty.plain_flag) == (True, False)
    assert last.label == "Zoë, \"quoted\"\ttab\\" and first.note == "x" * 500 and last.note == "line\nbreak"
    assert first.happened_at == dt.datetime(2024, 3, 31, 0, 30, 0, 123456, tzinfo=dt.timezone.utc)  # CET: UTC+1
    assert last.happened_at == dt.datetime(2024, 10, 27, 1, 15, tzinfo=dt.timezone.utc)  # CET after the switch
    assert first.naive_at == dt.datetime(2024, 1, 1, 0, 0, 1)
    assert last.naive_at == dt.datetime(1999, 12, 31, 23, 59, 59, 999999)
    assert (first.day, last.day) == (dt.date(2024, 2, 29), dt.date(1970, 1, 1))
    assert (first.color, last.color) == (Color.red, Color.green)
    assert first.payload == {"a": [1, 2.5, None], "é": "ü"} and last.payload == [1, "two"]
    assert (first.blob, last.blob) == (b"\x00\x01\xff\\N", b"")
    assert (first.token, last.token) == (uuid.UUID(int=1), uuid.UUID("12345678-1234-5678-1234-567812345678"))
    assert first.duration == dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5)
    assert last.duration == dt.timedelta(seconds=-1)
    assert (first.arrow_count, last.arrow_count) == (7, 0)
    assert first.default_text == "fallback"
    nullable = [c.key for c in sa.inspect(Everything).columns if c.nullable and c.key != "small"]
    assert {name: getattr(empty, name) for name in nullable} == dict.fromkeys(nullable)
    # A missing JSON value is SQL NULL, not the JSON document null.
    payload_nulls = kitchen.session.scalar(
        sa.select(sa.func.count()).select_from(Everything).where(Everything.__table__.c.payload.is_(None))
    )
    assert payload_nulls == 1


@pytest.mark.parametrize("dtype_backend", ["numpy_nullable", "pyarrow"])
def test_what_frame_reads_inserts_back_unchanged(kitchen, dtype_backend):
    kitchen.insert_frame(Everything, rich_frame())
    kitchen.session.commit()
    read = kitchen.frame(Everything, dtype_backend=dtype_backend, progress=False)
    kitchen.session.execute(sa.delete(Everything))
    assert kitchen.insert_frame(Everything, read) == 3
    kitchen.session.commit()
    again = kitchen.frame(Everything, dtype_backend=dtype_backend, progress=False)
    pd.testing.assert_frame_equal(again, read)


def test_app_models_get_python_defaults_and_tz_aware_timestamps(wb):
    users = pd.DataFrame(
        {
            "id": [1, 2],
            "email": ["a@example.com", "b@example.com"],
            "name": ["A", "B"],
            "country": ["DE", "US"],
            "plan": [Plan.pro, "team"],
            "signed_up_at": pd.to_datetime(["2024-01-01 12:00", "2024-07-01 12:00"]).tz_localize("America/New_York"),
        }
    ).set_index("id")  # a named index is a column
    wb.insert_frame(User, users)
    wb.session.commit()
    stored = wb.session.execute(sa.select(User).order_by(User.id)).scalars().all()
    assert [u.id for u in stored] == [1, 2]
    assert [u.plan for u in stored] == [Plan.pro, Plan.team]
    assert [u.active for u in stored] == [True, True]  # Python-side default filled in
    assert stored[0].signed_up_at == dt.datetime(2024, 1, 1, 17, 0, tzinfo=dt.timezone.utc)
    assert stored[1].signed_up_at == dt.datetime(2024, 7, 1, 16, 0, tzinfo=dt.timezone.utc)


def test_explicit_ids_do_not_break_the_next_orm_insert(wb):
    wb.insert_frame(Data, pd.DataFrame({"id": [1, 2, 3], "value": [1.0, 2.0, 3.0]}))
    wb.session.commit()
    wb.session.add(Data(value=4.0))
    wb.session.commit()  # PostgreSQL: the serial sequence was moved past the explicit ids
    assert sorted(wb.session.scalars(sa.select(Data.id))) == [1, 2, 3, 4]


def test_insert_joins_the_session_transaction_and_is_kept_between_cells(wb):
    wb.insert_frame(Data, pd.DataFrame({"value": [1.5, 2.5]}))
    assert wb.release() == "kept"  # the per-cell release sees the write and keeps it
    assert outside_count(wb, "data") == 0
    wb.session.commit()
    assert outside_count(wb, "data") == 2


def test_bad_value_in_the_middle_of_100000_rows_leaves_the_table_unchanged(wb):
    wb.insert_frame(Data, pd.DataFrame({"value": [0.5] * 10, "source": "before"}))
    wb.session.commit()
    values = pd.Series(np.arange(100_000, dtype=float), dtype=object)
    values.iloc[50_000] = "12,5"
    with pytest.raises(analysis.InsertError, match=r"Row 50000, column 'value': '12,5' \(str\) is not a number"):
        wb.insert_frame(Data, pd.DataFrame({"value": values, "source": "bulk"}), chunksize=7_000)
    assert count(wb, Data) == 10
    assert outside_count(wb, "data") == 10


def test_row_the_database_refuses_in_the_middle_of_100000_rolls_back_everything(wb):
    wb.insert_frame(Data, pd.DataFrame({"id": [50_001], "value": [0.5]}))
    wb.session.commit()
    frame = pd.DataFrame({"id": np.arange(1, 100_001), "value": np.linspace(0, 1, 100_000)})
    frame.loc[50_001, "id"] = 50_001 + 100_000  # keep row 50000's id (50001) the clash
    with pytest.raises(analysis.InsertError, match=r"Row 50000 could not be inserted into data: .*(unique|UNIQUE|duplicate)") as info:
        wb.insert_frame(Data, frame)
    assert "rolled back" in str(info.value)
    assert count(wb, Data) == 1
    assert outside_count(wb, "data") == 1
    # The session is usable again right away.
    assert wb.insert_frame(Data, pd.DataFrame({"value": [1.0]})) == 1
    wb.session.commit()
    assert outside_count(wb, "data") == 2


def test_unknown_and_missing_columns_are_named(wb):
    with pytest.raises(analysis.InsertError, match=r"has no columns 'valu', 'extra'.*Its columns are: id, value, source, created_at"):
        wb.insert_frame(Data, pd.DataFrame({"valu": [1.0], "extra": [1], "source": ["s"]}))
    with pytest.raises(analysis.InsertError, match=r"missing the required columns 'email', 'name', 'country'"):
        wb.insert_frame(User, pd.DataFrame({"id": [1]}))
    with pytest.raises(analysis.InsertError, match=r"Row 2 \(index 'c'\), column 'value': missing value.*NOT NULL"):
        wb.insert_frame(Data, pd.DataFrame({"value": [1.0, 2.0, None]}, index=list("abc")))
    with pytest.raises(analysis.InsertError, match=r"duplicate columns: value"):
        wb.insert_frame(Data, pd.DataFrame([[1.0, 2.0]], columns=["value", "value"]))
    with pytest.raises(analysis.InsertError, match=r"Row 1, column 'user_id': 2.5 is not a whole number"):
        wb.insert_frame(Event, pd.DataFrame({"user_id": [1.0, 2.5], "kind": "x"}))
    with pytest.raises(analysis.InsertError, match=r"Row 0, column 'plan': 'gold' \(str\) is not one of 'free', 'pro', 'team', 'enterprise'"):
        wb.insert_frame(User, pd.DataFrame({"email": ["e"], "name": ["n"], "country": ["DE"], "plan": ["gold"]}))
    assert count(wb, Data) == 0 and count(wb, User) == 0


def test_bad_arguments_are_refused_clearly(wb):
    frame = pd.DataFrame({"value": [1.0]})
    with pytest.raises(ValueError, match=r"on_conflict='replace' is not supported; use one of 'error', 'ignore', 'update'"):
        wb.insert_frame(Data, frame, on_conflict="replace")
    with pytest.raises(ValueError, match="chunksize must be a positive number"):
        wb.insert_frame(Data, frame, chunksize=0)
    with pytest.raises(TypeError, match="needs a pandas DataFrame"):
        wb.insert_frame(Data, [{"value": 1.0}])  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="No model named 'Datum'"):
        wb.insert_frame("Datum", frame)
    assert wb.insert_frame("Data", frame) == 1  # a model's name works too


def test_read_only_workbench_refuses_with_the_how_to(app):
    workbench = Workbench(app, writable=False, cell_hooks=False)
    workbench.open()
    try:
        with pytest.raises(analysis.ReadOnlyError, match=r"read-only.*writable=True.*analysis\.job"):
            workbench.insert_frame(Data, pd.DataFrame({"value": [1.0]}))
    finally:
        workbench.close()


def test_module_level_shortcut_uses_the_current_workbench(app):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    read_only = analysis.connect("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url})
    try:
        assert analysis.current() is read_only
        with pytest.raises(analysis.ReadOnlyError):
            analysis.insert_frame(Data, pd.DataFrame({"value": [1.0]}))
        writable = analysis.connect("my_app:create_app", config={"SQLALCHEMY_DATABASE_URI": url}, writable=True)
        assert read_only.closed and analysis.current() is writable
        assert analysis.insert_frame("Data", pd.DataFrame({"value": [1.0, 2.0]})) == 2
        writable.session.commit()
        assert outside_count(writable, "data") == 2
    finally:
        analysis.current().close()


def test_on_conflict_ignore_and_update(wb):
    wb.insert_frame(Data, pd.DataFrame({"id": [1, 2], "value": [1.0, 2.0], "source": ["old", "old"]}))
    wb.session.commit()
    incoming = pd.DataFrame({"id": [2, 3], "value": [20.0, 30.0], "source": ["new", "new"]})
    assert wb.insert_frame(Data, incoming, on_conflict="ignore") == 1
    wb.session.commit()
    assert wb.session.execute(sa.select(Data.id, Data.value).order_by(Data.id)).all() == [(1, 1.0), (2, 2.0), (3, 30.0)]
    incoming = pd.DataFrame({"id": [3, 4], "value": [300.0, 400.0], "source": ["upd", "upd"]})
    assert wb.insert_frame(Data, incoming, on_conflict="update") == 2
    wb.session.commit()
    rows = wb.session.execute(sa.select(Data.id, Data.value, Data.source).order_by(Data.id)).all()
    assert rows == [(1, 1.0, "old"), (2, 2.0, "old"), (3, 300.0, "upd"), (4, 400.0, "upd")]
    with pytest.raises(analysis.InsertError, match="matches rows by primary key, so the frame needs the column 'id'"):
        wb.insert_frame(Data, pd.DataFrame({"value": [1.0]}), on_conflict="update")
    with pytest.raises(analysis.InsertError, match=r"Row 0 repeats a primary key"):
        wb.insert_frame(Data, pd.DataFrame({"id": [9, 9], "value": [1.0, 2.0]}), on_conflict="update")


@pytest.mark.backends("mysql")
def test_mariadb_inserts_and_declines_upserts(wb):
    frame = pd.DataFrame(
        {"value": [1.0, np.nan, 3.0], "source": ["a", None, "c"],
         "created_at": pd.to_datetime(["2024-01-01 10:00:00.5", None, "2024-01-02"], format="ISO8601", utc=True)}
    )
    frame.loc[1, "value"] = 2.0
    frame["created_at"] = frame["created_at"].fillna(pd.Timestamp("2024-01-03", tz="UTC"))
    assert wb.insert_frame(Data, frame) == 3
    wb.session.commit()
    stored = wb.session.execute(sa.select(Data.value, Data.source, Data.created_at).order_by(Data.id)).all()
    assert stored[0] == (1.0, "a", dt.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=dt.timezone.utc))
    assert stored[1][1] is None
    with pytest.raises(analysis.InsertError, match="supported on SQLite and PostgreSQL, not mysql"):
        wb.insert_frame(Data, frame, on_conflict="ignore")


@pytest.mark.backends("sqlite")
def test_random_frames_round_trip(wb):
    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
    moments = st.datetimes(
        min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.timezone.utc)
    )

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.floats(allow_nan=False, allow_infinity=False), st.none() | text, moments), max_size=30))
    def check(rows: list[tuple[float, str | None, dt.datetime]]) -> None:
        frame = pd.DataFrame(rows, columns=["value", "source", "created_at"]).astype(
            {"value": float, "source": object, "created_at": "datetime64[us, UTC]"}
        )
        assert wb.insert_frame(Data, frame) == len(rows)
        stored = wb.session.execute(sa.select(Data.value, Data.source, Data.created_at).order_by(Data.id)).all()
        wb.session.rollback()
        assert [tuple(row) for row in stored] == rows

    check()
