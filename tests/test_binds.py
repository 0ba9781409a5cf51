"""Binds (``SQLALCHEMY_BINDS``, ``__bind_key__``): every Workbench feature on the right database.

The app is tests/apps/binds.py: its default database is a SQLite file, its ``warehouse`` bind
is on the backend under test, so on PostgreSQL and MariaDB the Workbench holds two databases
of different kinds. The notebook side is in tests/test_apps.py; these run in this process.
"""

from __future__ import annotations

import csv
import logging
import typing as t

import pandas as pd
import pytest
import sqlalchemy as sa
from apps import binds
from flask import Flask
from testing_apps import PG_PASSWORD, outside_scalar, with_password
from testing_backends import pg_states, wait_for_no_pg_connections

import analysis
from analysis.errors import QueryError, ReadOnlyError


@pytest.fixture
def binds_app(database_url: str, tmp_path) -> t.Iterator[Flask]:
    app = binds.create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'catalogue.sqlite'}",
            "SQLALCHEMY_BINDS": {"warehouse": with_password(database_url)},
        }
    )
    with app.app_context():
        binds.db.create_all()
        binds.seed()
        binds.db.session.remove()
        for engine in binds.db.engines.values():
            engine.dispose()
    yield app


@pytest.fixture
def wb(binds_app: Flask) -> t.Iterator[analysis.Workbench]:
    workbench = analysis.connect(binds_app)
    yield workbench
    workbench.close()


def count(app: Flask, bind: str | None, table: str) -> int:
    url = app.config["SQLALCHEMY_BINDS"][bind] if bind else app.config["SQLALCHEMY_DATABASE_URI"]
    return outside_scalar(url, sa.select(sa.func.count()).select_from(sa.table(table)))


def test_every_query_form_reads_the_bind_of_its_tables(wb):
    shipments = wb.frame(binds.Shipment).sort_values("id")
    assert shipments["quantity"].tolist() == [5, 12, 1]
    assert wb.frame(binds.stock)["on_hand"].sum() == 47
    assert wb.frame(binds.WarehouseNote).sort_values("id")["urgent"].tolist() == [True, pd.NA]
    assert wb.frame(binds.Note)["text"].tolist() == ["catalogue note"]
    assert len(wb.frame(binds.Shipment.query.filter(binds.Shipment.quantity > 1))) == 2
    joined = wb.frame(sa.select(binds.Shipment.id, binds.stock.c.on_hand).join(
        binds.stock, binds.stock.c.product_id == binds.Shipment.product_id))
    assert sorted(joined["on_hand"].tolist()) == [7, 40, 40]
    chunks = list(wb.frames(binds.Shipment, chunksize=2))
    assert [len(c) for c in chunks] == [2, 1]


def test_a_query_spanning_two_binds_is_one_clear_error(wb, tmp_path):
    across = sa.select(binds.Product.name, binds.Shipment.quantity).join(
        binds.Shipment, binds.Shipment.product_id == binds.Product.id)
    for read in (
        lambda: wb.frame(across),
        lambda: list(wb.frames(across)),
        lambda: wb.export_csv(across, tmp_path / "across.csv"),
    ):
        with pytest.raises(QueryError, match=r"(?s)(products.*default.*shipments.*warehouse|shipments.*warehouse.*products.*default)"):
            read()
    assert not (tmp_path / "across.csv").exists()


def test_tables_names_the_bind_of_every_table(wb):
    tables = wb.tables()
    by_place = {(row.table, row.bind): row for row in tables.itertuples()}
    assert set(by_place) == {
        ("products", None), ("notes", None), ("shipments", "warehouse"), ("stock", "warehouse"), ("notes", "warehouse"),
    }
    assert by_place[("notes", "warehouse")].model == "WarehouseNote"
    assert by_place[("notes", "warehouse")].rows == 2
    assert by_place[("stock", "warehouse")].model == ""
    assert by_place[("shipments", "warehouse")].rows == 3


def test_repr_lists_every_database_with_passwords_masked(wb, binds_app):
    text = repr(wb) + wb._repr_html_()
    assert "catalogue.sqlite" in text
    warehouse = sa.make_url(binds_app.config["SQLALCHEMY_BINDS"]["warehouse"])
    assert warehouse.render_as_string(hide_password=True) in repr(wb)
    assert "warehouse" in repr(wb)
    assert PG_PASSWORD not in text


def test_read_only_is_enforced_on_every_bind(wb, binds_app):
    for bind, table, obj in (
        (None, "products", binds.Product(id=9, name="x", price=1)),
        ("warehouse", "shipments", binds.Shipment(id=9, product_id=1, quantity=1)),
    ):
        wb.session.add(obj)
        with pytest.raises(ReadOnlyError):
            wb.session.commit()
        wb.session.rollback()
        with pytest.raises(ReadOnlyError):
            wb.session.execute(sa.text(f"DELETE FROM {table}"), bind_arguments={"bind": wb.db.engines[bind]})
        wb.session.rollback()
        assert count(binds_app, bind, table) == 3


def test_export_reads_the_bind(wb, tmp_path, backend):
    result = wb.export_csv(binds.Shipment, tmp_path / "shipments.csv")
    with open(result.path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["quantity"]) for r in rows) == [1, 5, 12]
    assert result.route == {"sqlite": "arrow", "postgresql": "copy", "mysql": "stream"}[backend]
    wb.export_parquet(binds.stock, tmp_path / "stock.parquet")
    assert pd.read_parquet(tmp_path / "stock.parquet")["on_hand"].tolist() == [40, 0, 7]


def test_insert_frame_writes_to_the_models_bind(binds_app):
    with analysis.connect(binds_app, writable=True) as wb:
        written = wb.insert_frame(binds.Shipment, pd.DataFrame({"id": [10, 11], "product_id": [2, 2], "quantity": [4, 6]}))
        wb.session.commit()
    assert written == 2
    assert count(binds_app, "warehouse", "shipments") == 5


def test_a_job_commits_on_every_bind_and_leaves_no_connection(binds_app, backend, caplog):
    config = {
        "SQLALCHEMY_DATABASE_URI": binds_app.config["SQLALCHEMY_DATABASE_URI"],
        "SQLALCHEMY_BINDS": dict(binds_app.config["SQLALCHEMY_BINDS"]),
    }
    caplog.set_level(logging.INFO, logger="analysis.jobs")
    with analysis.job(binds.create_app, config=config) as wb:
        wb.session.add(binds.Note(id=5, text="from a job"))
        wb.insert_frame(binds.WarehouseNote, pd.DataFrame({"id": [7], "text": ["restock"], "urgent": [False]}))
        name = wb.application_name
    assert count(binds_app, None, "notes") == 2
    assert count(binds_app, "warehouse", "notes") == 3
    if backend == "postgresql":
        wait_for_no_pg_connections(name, within=5.0)


@pytest.mark.backends("postgresql")
def test_release_and_close_free_every_bind(wb):
    wb.session.execute(sa.select(binds.Shipment)).all()
    wb.session.execute(sa.select(binds.Product)).all()
    assert pg_states(wb.application_name) == ["idle in transaction"]
    assert wb.release() == "released"
    assert pg_states(wb.application_name) == ["idle"]
    wb.close()
    assert pg_states(wb.application_name) == []
