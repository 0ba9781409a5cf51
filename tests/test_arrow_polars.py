"""Workbench.arrow / Workbench.polars: the README's Arrow and Polars types for every column type,
with NULLs, on every backend and both routes (the Arrow-native driver and SQLAlchemy's)."""

from __future__ import annotations

import decimal
import sys
import typing as t
import uuid

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Mapped, mapped_column
from test_frames import ROWS, Base, Color, TypeRow

import analysis
from my_app.db import db


class Tagged(Base):
    __tablename__ = "arrow_uuids"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tag: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)


TAGS = [uuid.UUID("12345678-1234-5678-1234-567812345678"), None]

ARROW_TYPES = {
    "id": pa.int64(), "small": pa.int64(), "big": pa.int64(), "flag": pa.bool_(), "ratio": pa.float64(),
    "price": pa.decimal128(12, 4), "day": pa.date32(), "moment": pa.timestamp("us"),
    "instant": pa.timestamp("us", tz="UTC"), "clock": pa.time64("us"), "label": pa.string(), "body": pa.string(),
    "color": pa.dictionary(pa.int32(), pa.string()), "payload": pa.json_(pa.string()), "blob": pa.binary(),
    "span": pa.duration("us"), "cents": pa.decimal128(4, 2),
}
POLARS_TYPES = {
    "id": pl.Int64, "small": pl.Int64, "big": pl.Int64, "flag": pl.Boolean, "ratio": pl.Float64,
    "price": pl.Decimal(12, 4), "day": pl.Date, "moment": pl.Datetime("us"), "instant": pl.Datetime("us", "UTC"),
    "clock": pl.Time, "label": pl.String, "body": pl.String, "color": pl.Enum(["red", "green", "blue"]),
    "payload": pl.String, "blob": pl.Binary, "span": pl.Duration("us"), "cents": pl.Decimal(4, 2),
}


@pytest.fixture(params=["fast", "sqlalchemy"])
def route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, backend: str) -> str:
    """Read through the Arrow-native driver, or through SQLAlchemy as when it is not installed."""
    if backend == "mysql":
        return "sqlalchemy"
    if request.param == "sqlalchemy":
        monkeypatch.setitem(sys.modules, "adbc_driver_sqlite.dbapi", None)
        monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)
    return request.param


@pytest.fixture
def wb(app: Flask) -> t.Iterator[analysis.Workbench]:
    with app.app_context():
        Base.metadata.create_all(db.engine)
        with db.engine.begin() as conn:
            conn.execute(sa.insert(TypeRow), [{c: row.get(c) for c in TypeRow.__table__.columns.keys()} for row in ROWS])
            conn.execute(sa.insert(Tagged), [{"id": i, "tag": tag} for i, tag in enumerate(TAGS)])
    workbench = analysis.connect(app)
    yield workbench
    workbench.close()


def expected(row: dict[str, t.Any], name: str) -> t.Any:
    value = row.get(name)
    if isinstance(value, Color):
        return value.name
    return value


def test_arrow_types_and_values_for_every_column_type(wb, route):
    table = wb.arrow(sa.select(TypeRow).order_by(TypeRow.id))
    assert {field.name: field.type for field in table.schema} == ARROW_TYPES
    assert table.column("color").chunk(0).dictionary.to_pylist() == ["red", "green", "blue"]
    assert table.column("id").to_pylist() == [1, 2, 3]
    for name in ARROW_TYPES:
        values = table.column(name).to_pylist()
        if name == "payload":
            import json

            values = [None if v is None else json.loads(v) for v in values]
        assert values == [expected(row, name) for row in ROWS], name
    assert [table.column(name).null_count for name in ARROW_TYPES if name != "id"] == [1] * (len(ARROW_TYPES) - 1)


def test_frame_is_the_arrow_table_converted_to_pandas(wb, route):
    query = sa.select(TypeRow).order_by(TypeRow.id)
    frame = wb.frame(query, dtype_backend="pyarrow").drop(columns=["cents", "payload", "color", "blob"])
    table = wb.arrow(query).drop_columns(["cents", "payload", "color", "blob"])
    assert all(pd.arrays.ArrowExtensionArray(table.column(n)).equals(frame[n].array) for n in table.column_names)


def test_polars_types_and_values_for_every_column_type(wb, route):
    frame = wb.polars(sa.select(TypeRow).order_by(TypeRow.id))
    assert dict(frame.schema) == POLARS_TYPES
    assert frame.schema["color"].categories.to_list() == ["red", "green", "blue"]
    for name in POLARS_TYPES:
        values = frame[name].to_list()
        if name == "payload":
            import json

            values = [None if v is None else json.loads(v) for v in values]
        assert values == [expected(row, name) for row in ROWS], name
    assert frame.null_count().row(0) == (0,) + (1,) * (len(POLARS_TYPES) - 1)
    assert frame["big"][0] == 2**53 + 1 and isinstance(frame["price"][0], decimal.Decimal)


def test_uuids_are_arrow_uuids_and_polars_text(wb, route):
    table = wb.arrow(sa.select(Tagged).order_by(Tagged.id))
    assert table.schema.field("tag").type == pa.uuid()
    assert table.column("tag").to_pylist() == TAGS
    assert wb.polars(sa.select(Tagged).order_by(Tagged.id))["tag"].to_list() == [str(TAGS[0]), None]


def test_empty_results_keep_the_types(wb, route):
    empty = sa.select(TypeRow).where(TypeRow.id < 0)
    table = wb.arrow(empty)
    assert table.num_rows == 0
    known = {n: ty for n, ty in ARROW_TYPES.items() if n not in ("payload", "cents")}
    assert {f.name: f.type for f in table.schema if f.name in known} == known
    frame = wb.polars(empty)
    assert frame.height == 0 and frame.schema["color"] == pl.Enum(["red", "green", "blue"])


def test_raw_sql_and_parameters(wb):
    table = wb.arrow("SELECT id, label FROM frame_types WHERE id >= :low ORDER BY id", params={"low": 2})
    assert table.column_names == ["id", "label"] and table.column("id").to_pylist() == [2, 3]
    assert wb.polars(sa.select(TypeRow.id).where(TypeRow.id == sa.bindparam("x")), params={"x": 3}).to_dicts() == [
        {"id": 3}
    ]
    assert analysis.current() is wb and analysis.arrow(TypeRow).num_rows == 3
    assert analysis.polars(TypeRow).height == 3
