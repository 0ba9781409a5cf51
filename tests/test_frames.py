"""Workbench.frame / frames: every query form, every dtype of the mapping table, on every backend.

The types table is this module's own (``frame_types``, created on the ``app`` fixture's
database), because the host app's models do not use every column type. Each dtype test runs
through both routes where the backend has a fast one: the Arrow-native driver, and SQLAlchemy's
connection (as when the driver is not installed: its import is made to fail).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import gc
import importlib
import sys
import typing as t

import pandas as pd
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column
from testing_backends import pg_admin_connection

import analysis
from analysis.errors import QueryError
from my_app.db import db
from my_app.models import Event, User

UTC = dt.timezone.utc


class Base(DeclarativeBase):
    pass


class Color(enum.Enum):
    red = "red"
    green = "green"
    blue = "blue"


def _datetime(**kw: t.Any) -> sa.types.TypeEngine[t.Any]:
    return sa.DateTime(**kw).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class Cents(sa.types.TypeDecorator[decimal.Decimal]):
    """Money stored as integer cents: its own result processing, which frame() must honour."""

    impl = sa.Integer
    cache_ok = True

    def process_bind_param(self, value: t.Any, dialect: sa.Dialect) -> t.Any:
        return None if value is None else int(value * 100)

    def process_result_value(self, value: t.Any, dialect: sa.Dialect) -> t.Any:
        return None if value is None else decimal.Decimal(value) / 100


class TypeRow(Base):
    __tablename__ = "frame_types"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    small: Mapped[int | None] = mapped_column(sa.SmallInteger)
    big: Mapped[int | None] = mapped_column(sa.BigInteger)
    flag: Mapped[bool | None] = mapped_column(sa.Boolean)
    ratio: Mapped[float | None] = mapped_column(sa.Float)
    price: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(12, 4))
    day: Mapped[dt.date | None] = mapped_column(sa.Date)
    moment: Mapped[dt.datetime | None] = mapped_column(_datetime())
    instant: Mapped[dt.datetime | None] = mapped_column(_datetime(timezone=True))
    clock: Mapped[dt.time | None] = mapped_column(sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb"))
    label: Mapped[str | None] = mapped_column(sa.String(50))
    body: Mapped[str | None] = mapped_column(sa.Text)
    color: Mapped[Color | None] = mapped_column(sa.Enum(Color, name="frame_color"))
    payload: Mapped[t.Any] = mapped_column(sa.JSON, nullable=True)
    blob: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    span: Mapped[dt.timedelta | None] = mapped_column(sa.Interval)
    cents: Mapped[decimal.Decimal | None] = mapped_column(Cents)


ROWS = [
    dict(
        id=1, small=-32768, big=2**53 + 1, flag=True, ratio=0.1, price=decimal.Decimal("12345678.1234"),
        day=dt.date(2024, 2, 29), moment=dt.datetime(2024, 2, 29, 13, 14, 15, 123456),
        instant=dt.datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC), clock=dt.time(23, 59, 58, 500000),
        label="Grüße, 東京 🚀", body="line one\nline two ✓" * 20, color=Color.green,
        payload={"a": [1, 2, {"b": None}], "ü": "x"}, blob=b"\x00\xff\x10", cents=decimal.Decimal("12.34"),
        span=dt.timedelta(days=1, hours=2, minutes=3, seconds=4),
    ),
    dict(id=2),  # NULL in every other column
    dict(
        id=3, small=0, big=-1, flag=False, ratio=-1.5e10, price=decimal.Decimal("-0.0001"),
        day=dt.date(1970, 1, 1), moment=dt.datetime(1999, 12, 31, 23, 59, 59),
        instant=dt.datetime(2000, 1, 1, tzinfo=UTC), clock=dt.time(0, 0), label="", body="",
        color=Color.red, payload=[], blob=b"", cents=decimal.Decimal("-0.05"), span=dt.timedelta(seconds=-1),
    ),
]

NULLABLE_DTYPES = {
    "id": "Int64", "small": "Int64", "big": "Int64", "flag": "boolean", "ratio": "Float64",
    "price": "decimal128(12, 4)[pyarrow]", "day": "date32[day][pyarrow]", "moment": "datetime64[us]",
    "instant": "datetime64[us, UTC]", "clock": "time64[us][pyarrow]", "label": "string", "body": "string",
    "color": "category", "payload": "object", "blob": "object", "span": "timedelta64[us]",
}
PYARROW_DTYPES = {
    **{name: dtype for name, dtype in NULLABLE_DTYPES.items() if "pyarrow" in dtype or dtype in ("category", "object")},
    "id": "int64[pyarrow]", "small": "int64[pyarrow]", "big": "int64[pyarrow]", "flag": "bool[pyarrow]",
    "ratio": "double[pyarrow]", "moment": "timestamp[us][pyarrow]", "instant": "timestamp[us, tz=UTC][pyarrow]",
    "label": "string[pyarrow]", "body": "string[pyarrow]", "blob": "binary[pyarrow]", "span": "duration[us][pyarrow]",
}


@pytest.fixture
def types_app(app: Flask) -> Flask:
    with app.app_context():
        Base.metadata.create_all(db.engine)
        with db.engine.begin() as conn:
            conn.execute(sa.insert(TypeRow), [{c: row.get(c) for c in TypeRow.__table__.columns.keys()} for row in ROWS])
    return app


@pytest.fixture
def wb(types_app: Flask) -> t.Iterator[analysis.Workbench]:
    workbench = analysis.connect(types_app)
    yield workbench
    workbench.close()


@pytest.fixture
def seeded_wb(seeded_app: Flask) -> t.Iterator[analysis.Workbench]:
    workbench = analysis.connect(seeded_app)
    yield workbench
    workbench.close()


@pytest.fixture(params=["fast", "sqlalchemy"])
def route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, backend: str) -> str:
    """Read through the Arrow-native driver, or through SQLAlchemy as when it is not installed."""
    if request.param == "sqlalchemy":
        monkeypatch.setitem(sys.modules, "adbc_driver_sqlite.dbapi", None)
        monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)
        monkeypatch.setitem(sys.modules, "connectorx", None)
    elif backend == "mysql":
        # MariaDB reads small results through PyMySQL; these test tables are all small.
        monkeypatch.setattr(importlib.import_module("analysis.read.mysql"), "SMALL_RESULT_ROWS", -1)
    elif backend == "sqlite":
        # So does SQLite, through sqlite3 ("small"): turn that route off.
        monkeypatch.setattr(importlib.import_module("analysis.read.routes"), "SMALL_ROWS", 0)
    return request.param


def reads(engine: sa.Engine) -> list[str]:
    """Record the statements SQLAlchemy sends on ``engine`` (the fast route sends none)."""
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda conn, cur, statement, *a: seen.append(statement))
    return seen


def cell(frame: pd.DataFrame, row: int, column: str) -> t.Any:
    value = frame[column].iloc[row]
    return None if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value) else value


def rows(frame: pd.DataFrame) -> list[tuple[t.Any, ...]]:
    """The frame's rows as tuples, with None for every kind of missing value."""
    return [tuple(None if pd.isna(v) else v for v in r) for r in frame.itertuples(index=False)]


# -- dtypes -----------------------------------------------------------------------------------


def test_every_type_keeps_its_values_and_dtype(wb, route):
    statements = reads(wb.engine)
    frame = wb.frame(sa.select(TypeRow).order_by(TypeRow.id)).drop(columns="cents")
    assert bool(statements) == (route == "sqlalchemy")

    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == NULLABLE_DTYPES
    assert list(frame["color"].cat.categories) == ["red", "green", "blue"]
    for i, row in enumerate(ROWS):
        for name in NULLABLE_DTYPES:
            expected = row.get(name)
            if isinstance(expected, Color):
                expected = expected.name
            got = cell(frame, i, name)
            assert got == expected and (got is None) == (expected is None), (name, i, got, expected)
    assert isinstance(cell(frame, 0, "price"), decimal.Decimal) and cell(frame, 0, "big") == 2**53 + 1

    arrow = wb.frame(TypeRow, dtype_backend="pyarrow").sort_values("id", ignore_index=True).drop(columns="cents")
    assert {name: str(dtype) for name, dtype in arrow.dtypes.items()} == PYARROW_DTYPES
    assert arrow["instant"].iloc[0] == ROWS[0]["instant"] and arrow["blob"].iloc[0] == b"\x00\xff\x10"
    assert arrow["flag"].isna().tolist() == [False, True, False]


def test_empty_result_has_the_columns_and_dtypes(wb, route):
    empty = wb.frame(sa.select(TypeRow).where(TypeRow.id < 0)).drop(columns="cents")
    assert len(empty) == 0
    assert {name: str(dtype) for name, dtype in empty.dtypes.items()} == NULLABLE_DTYPES
    chunks = list(wb.frames(sa.select(TypeRow).where(TypeRow.id < 0)))
    assert len(chunks) == 1 and len(chunks[0]) == 0
    assert list(chunks[0].columns) == [name for name in TypeRow.__table__.columns.keys()]
    raw = wb.frame("SELECT id, label FROM frame_types WHERE id < 0")
    assert list(raw.columns) == ["id", "label"] and len(raw) == 0


@pytest.mark.backends("sqlite")
def test_a_column_all_null_in_the_first_batch_stays_on_the_fast_route(wb, monkeypatch):
    # ADBC's SQLite driver types columns from their first batch: make that batch the NULL row.
    monkeypatch.setattr(importlib.import_module("analysis.read.adbc"), "SQLITE_BATCH_ROWS", 1)
    monkeypatch.setattr(importlib.import_module("analysis.read.routes"), "SMALL_ROWS", 0)
    statements = reads(wb.engine)
    query = sa.select(TypeRow).order_by(sa.case((TypeRow.id == 2, 0), else_=1), TypeRow.id)
    frame = wb.frame(query).drop(columns="cents")
    assert statements == []
    assert frame["id"].tolist() == [2, 1, 3] and frame["label"].tolist()[1:] == [ROWS[0]["label"], ""]
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == NULLABLE_DTYPES


def test_numeric_can_be_read_as_float(wb):
    frame = wb.frame(sa.select(TypeRow.id, TypeRow.price).order_by(TypeRow.id), coerce_float=True)
    assert str(frame["price"].dtype) == "Float64"
    assert frame["price"].iloc[0] == pytest.approx(12345678.1234) and frame["price"].isna().iloc[1]


def test_frames_chunks_have_the_dtypes_of_frame(wb):
    whole = wb.frame(sa.select(TypeRow).order_by(TypeRow.id))
    chunks = list(wb.frames(sa.select(TypeRow).order_by(TypeRow.id), chunksize=2))
    assert [len(c) for c in chunks] == [2, 1]
    assert all(dict(c.dtypes) == dict(whole.dtypes) for c in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


# -- query forms and names --------------------------------------------------------------------


def test_every_query_form_gives_model_attribute_names(seeded_wb):
    wb = seeded_wb
    session = wb.session
    users = session.scalars(sa.select(User).order_by(User.id)).all()
    german = [u for u in users if u.country == "DE"]
    user_columns = ["id", "email", "name", "country", "active", "plan", "signed_up_at", "birth_date", "referrer_id", "bio"]

    by_class = wb.frame(User).sort_values("id", ignore_index=True)
    assert list(by_class.columns) == user_columns
    assert by_class["email"].tolist() == [u.email for u in users]
    assert by_class["signed_up_at"].tolist() == [u.signed_up_at for u in users]
    assert str(by_class["signed_up_at"].dtype) == "datetime64[us, UTC]"
    assert by_class["plan"].tolist() == [u.plan.name for u in users]
    assert list(by_class["plan"].cat.categories) == ["free", "pro", "team", "enterprise"]
    assert [None if pd.isna(d) else d for d in by_class["birth_date"]] == [u.birth_date for u in users]

    assert list(wb.frame(User.__table__).columns) == user_columns
    legacy = wb.frame(User.query.filter_by(country="DE").order_by(User.id))
    assert legacy["id"].tolist() == [u.id for u in german]
    modern = wb.frame(db.select(User).where(User.country == "DE").order_by(User.id))
    pd.testing.assert_frame_equal(modern, legacy)
    u2 = aliased(User, name="u2")
    assert list(wb.frame(sa.select(u2).where(u2.country == "DE")).columns) == user_columns

    labelled = wb.frame(sa.select(User.id, User.email.label("mail"), (User.id * 2).label("twice")).order_by(User.id))
    assert list(labelled.columns) == ["id", "mail", "twice"]
    assert labelled["twice"].tolist() == [2 * u.id for u in users]

    counts = wb.frame(
        sa.select(User.country, sa.func.count(Event.id).label("events"), sa.func.sum(Event.amount).label("revenue"))
        .join(User.events).group_by(User.country).order_by(User.country)
    )
    expected = session.execute(
        sa.select(User.country, sa.func.count(Event.id), sa.func.sum(Event.amount))
        .join(User.events).group_by(User.country).order_by(User.country)
    ).all()
    assert list(counts.columns) == ["country", "events", "revenue"]
    assert rows(counts) == [tuple(r) for r in expected]

    raw = wb.frame("SELECT id, email FROM users WHERE country = :country ORDER BY id", params={"country": "DE"})
    assert list(raw.columns) == ["id", "email"] and raw["id"].tolist() == [u.id for u in german]
    assert analysis.frame(User.query.filter_by(country="DE"))["id"].sort_values().tolist() == [u.id for u in german]


def test_join_with_colliding_names_keeps_both_columns(seeded_wb):
    wb = seeded_wb
    pairs = wb.session.execute(sa.select(User.id, Event.id, Event.user_id).join(User.events).order_by(Event.id)).all()
    joined = wb.frame(sa.select(User, Event).join(User.events).order_by(Event.id))
    assert list(joined.columns[:11]) == ["id", "email", "name", "country", "active", "plan", "signed_up_at", "birth_date", "referrer_id", "bio", "id_1"]
    assert "referrer" in joined.columns and "user_id" in joined.columns
    assert list(zip(joined["id"], joined["id_1"], joined["user_id"], strict=True)) == [tuple(p) for p in pairs]
    raw = wb.frame("SELECT u.id, e.id, e.id AS id_1 FROM users u JOIN events e ON e.user_id = u.id ORDER BY e.id")
    # A name the query gives explicitly is kept; generated ones step around it.
    assert list(raw.columns) == ["id", "id_2", "id_1"]
    assert raw["id"].tolist() == [p[0] for p in pairs] and raw["id_2"].tolist() == raw["id_1"].tolist() == [p[1] for p in pairs]


def test_index_col_and_columns(seeded_wb):
    frame = seeded_wb.frame(User, columns=["email", "id"], index_col="id")
    assert list(frame.columns) == ["email"] and frame.index.name == "id"
    raw = seeded_wb.frame("SELECT id, email, country FROM users", columns=["country"], index_col=None)
    assert list(raw.columns) == ["country"]
    with pytest.raises(QueryError, match=r"columns=: no column named 'mail'; the query's columns are id, email"):
        seeded_wb.frame(User, columns=["mail"])
    with pytest.raises(QueryError, match=r"index_col=: no column named 'nope'"):
        seeded_wb.frame(User, index_col="nope")


# -- semantics --------------------------------------------------------------------------------


def test_frame_sees_the_sessions_uncommitted_writes(types_app):
    with analysis.connect(types_app, writable=True) as wb:
        session = wb.session
        session.add(TypeRow(id=10, label="pending", color=Color.blue, instant=dt.datetime(2030, 1, 1, tzinfo=UTC)))
        frame = wb.frame(sa.select(TypeRow).order_by(TypeRow.id)).drop(columns="cents")  # flushed, read on the session's connection
        assert frame["id"].tolist() == [1, 2, 3, 10] and frame["label"].iloc[3] == "pending"
        assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == NULLABLE_DTYPES
        session.execute(sa.text("UPDATE frame_types SET label = 'changed' WHERE id = 1"))
        assert wb.frame("SELECT label FROM frame_types WHERE id = 1")["label"].tolist() == ["changed"]
        chunks = list(wb.frames(TypeRow, chunksize=3))
        assert sum(len(c) for c in chunks) == 4
        session.rollback()
        assert wb.frame(TypeRow)["id"].sort_values().tolist() == [1, 2, 3]
        assert wb.frame("SELECT label FROM frame_types WHERE id = 1")["label"].tolist() == [ROWS[0]["label"]]


def test_reads_leave_no_transaction_or_connection_behind(types_app, backend):
    with analysis.connect(types_app, writable=True) as wb:
        engine = wb.engine
        wb.frame(TypeRow)
        wb.frame("SELECT * FROM frame_types WHERE id = :id", params={"id": 1})
        assert not wb.session().in_transaction()
        assert engine.pool.checkedout() == 0
        with pytest.raises(QueryError, match=r"starts with DELETE"):
            wb.frame("DELETE FROM frame_types")
        assert wb.frame(sa.select(sa.func.count()).select_from(TypeRow)).iloc[0, 0] == 3
        if backend == "postgresql":
            with pg_admin_connection() as admin:
                ours = admin.execute(
                    "SELECT state FROM pg_stat_activity WHERE application_name LIKE %s", (wb.application_name + "%",)
                ).fetchall()
            assert all(state == "idle" for (state,) in ours), ours


@pytest.mark.backends("mysql")
@pytest.mark.backends("sqlite")
def test_small_sqlite_results_come_from_the_apps_connection_and_large_ones_from_the_helper(seeded_wb, monkeypatch):
    statements = reads(seeded_wb.engine)
    small = seeded_wb.frame(Event)  # 100 rows, at most SMALL_ROWS: read through sqlite3
    assert [s for s in statements if "FROM events" in s] and len(small) == 100
    monkeypatch.setattr(importlib.import_module("analysis.read.routes"), "SMALL_ROWS", 10)
    statements.clear()
    large = seeded_wb.frame(Event)  # sqlite3 sees an 11th row, then the helper reads it all
    assert len([s for s in statements if "FROM events" in s]) == 1
    pd.testing.assert_frame_equal(large, small)


@pytest.mark.backends("mysql")
def test_the_mariadb_fast_route_connection_is_read_only(types_app):
    from analysis.errors import RouteUnavailable
    from analysis.read import mysql

    with analysis.connect(types_app, writable=True) as wb:
        with pytest.raises(RouteUnavailable, match=r"(?i)read.?only"):
            with mysql.open_reader(wb.engine, "DELETE FROM frame_types"):
                pass
        assert wb.frame(sa.select(sa.func.count()).select_from(TypeRow)).iloc[0, 0] == 3


@pytest.mark.backends("sqlite", "postgresql")
def test_the_fast_route_connection_is_read_only(types_app, backend):
    from analysis.errors import RouteUnavailable
    from analysis.read import adbc

    with analysis.connect(types_app, writable=True) as wb:
        with pytest.raises(RouteUnavailable, match=r"(?i)read.?only"):
            with adbc.open_reader(wb.engine, "DELETE FROM frame_types RETURNING id", ()) as reader:
                reader.read_all()
        # A data-modifying query on a writable Workbench runs on a connection that is rolled back.
        sneaky = {
            "sqlite": "WITH doomed AS (SELECT 1) DELETE FROM frame_types",
            "postgresql": "WITH doomed AS (DELETE FROM frame_types RETURNING id) SELECT count(*) AS n FROM doomed",
        }[backend]
        try:
            wb.frame(sneaky)
        except QueryError:
            pass  # SQLite: the statement returns no rows
        assert wb.frame(sa.select(sa.func.count()).select_from(TypeRow)).iloc[0, 0] == 3
        assert wb.engine.pool.checkedout() == 0


def test_frames_hold_a_connection_only_while_iterating(seeded_wb, backend):
    wb = seeded_wb
    engine = wb.engine
    statements: list[tuple[str, t.Any]] = []
    sa.event.listen(engine, "before_cursor_execute", lambda conn, cur, st, p, ctx, many: statements.append((st, ctx.execution_options)))

    chunks = wb.frames(sa.select(Event).order_by(Event.id), chunksize=30)
    assert engine.pool.checkedout() == 0  # nothing happens before the first next()
    first = next(chunks)
    assert len(first) == 30 and engine.pool.checkedout() == 1
    if backend != "sqlite":  # a server-side cursor bounds memory by the chunk
        assert any(options.get("stream_results") for st, options in statements if "FROM events" in st)
    rest = list(chunks)
    assert [len(c) for c in rest] == [30, 30, 10] and engine.pool.checkedout() == 0
    whole = wb.frame(sa.select(Event).order_by(Event.id))
    pd.testing.assert_frame_equal(pd.concat([first, *rest], ignore_index=True), whole)

    with wb.frames(Event, chunksize=10) as chunks:
        next(chunks)
    assert engine.pool.checkedout() == 0
    abandoned = wb.frames(Event, chunksize=10)
    next(abandoned)
    assert engine.pool.checkedout() == 1
    del abandoned
    gc.collect()
    assert engine.pool.checkedout() == 0
    assert not wb.session().in_transaction()


def test_type_decorators_keep_their_own_processing(wb, route):
    statements = reads(wb.engine)
    frame = wb.frame(sa.select(TypeRow.id, TypeRow.cents).order_by(TypeRow.id))
    assert [cell(frame, i, "cents") for i in range(3)] == [decimal.Decimal("12.34"), None, decimal.Decimal("-0.05")]
    assert frame["cents"].dtype == object  # what SQLAlchemy returns, value by value
    assert bool(statements) == (route == "sqlalchemy")  # integers from either driver: no need to re-read


# -- errors -----------------------------------------------------------------------------------


def test_errors_name_the_problem(wb):
    with pytest.raises(QueryError, match=r"rejected the query: .*nope"):
        wb.frame("SELECT nope FROM frame_types")
    with pytest.raises(QueryError, match=r"rejected the query: .*(syntax|SELEC)"):
        wb.frame("SELECT FROM WHERE")
    with pytest.raises(QueryError, match=r"rejected the query: .*missing_table"):
        wb.frame("SELECT * FROM missing_table")
    with pytest.raises(QueryError, match=r"Cannot make a DataFrame from a builtins.int"):
        wb.frame(42)
    with pytest.raises(QueryError, match=r"Cannot make a DataFrame from a .*TypeRow"):
        wb.frame(TypeRow(id=1))
    with pytest.raises(QueryError, match=r"Delete statements do not return rows"):
        wb.frame(sa.delete(TypeRow))
    with pytest.raises(QueryError, match=r"needs a value for :id: pass params=\{'id': \.\.\.\}"):
        wb.frame("SELECT * FROM frame_types WHERE id = :id")
    with pytest.raises(QueryError, match=r"Unknown parameter 'idd': the query's parameters are :id"):
        wb.frame("SELECT * FROM frame_types WHERE id = :id", params={"id": 1, "idd": 2})
    with pytest.raises(ValueError, match=r"dtype_backend must be one of 'numpy_nullable', 'pyarrow'"):
        wb.frame(TypeRow, dtype_backend="numpy")
    with pytest.raises(ValueError, match=r"chunksize must be a positive number"):
        wb.frames(TypeRow, chunksize=0)
    with pytest.raises(QueryError, match=r"rejected the query"):
        list(wb.frames("SELECT nope FROM frame_types"))
    assert wb.engine.pool.checkedout() == 0


def test_filters_with_every_parameter_type(wb, route):
    query = sa.select(TypeRow.id).where(
        TypeRow.instant > dt.datetime(1999, 12, 31, 23, tzinfo=UTC), TypeRow.day >= dt.date(1970, 1, 1),
        TypeRow.id.in_([1, 3]), TypeRow.color.in_([Color.green, Color.red]), TypeRow.price > decimal.Decimal("-1"),
        TypeRow.flag.is_not(None), TypeRow.label != "nothing",
    ).order_by(TypeRow.id)
    assert wb.frame(query)["id"].tolist() == [1, 3]
    assert wb.frame(query.where(TypeRow.color == Color.green))["id"].tolist() == [1]


def test_parameters_are_bound_never_formatted(wb):
    hostile = "x' OR '1'='1"
    assert len(wb.frame("SELECT id FROM frame_types WHERE label = :label", params={"label": hostile})) == 0
    echoed = wb.frame("SELECT label FROM frame_types WHERE label = :label", params={"label": ROWS[0]["label"]})
    assert echoed["label"].tolist() == [ROWS[0]["label"]]
    by_bindparam = wb.frame(sa.select(TypeRow.id).where(TypeRow.label == sa.bindparam("l")), params={"l": ""})
    assert by_bindparam["id"].tolist() == [3]


@pytest.mark.backends("sqlite")
def test_large_results_show_a_progress_bar(wb, monkeypatch, capsys, route):
    monkeypatch.setattr(importlib.import_module("analysis.progress"), "ROWS", 1)
    wb.frame(TypeRow)
    assert "rows" in capsys.readouterr().err
    wb.frame(TypeRow, progress=False)
    assert capsys.readouterr().err == ""
