"""SQL echo: each statement the ORM or the toolkit runs, once, with parameters, time and rows."""

from __future__ import annotations

import re

import pytest
from kernels import Kernel

import analysis
from my_app.models import User

pytestmark = pytest.mark.backends("sqlite", "postgresql")


def test_echo_prints_each_statement_once_with_parameters_time_and_rows(seeded_app, capsys):
    wb = analysis.connect(seeded_app, echo=True)
    try:
        assert wb.echo is True
        capsys.readouterr()
        assert User.query.filter_by(country="DE").count() >= 0
        out = capsys.readouterr().out
        assert out.count("SELECT count(*)") == 1
        assert re.search(r"^-- \d+\.\d ms", out, re.M)
        assert "-- parameters: " in out and "'DE'" in out
        wb.frame("SELECT id FROM users WHERE id <= :n", params={"n": 3}, progress=False)
        out = capsys.readouterr().out
        assert out.count("SELECT id") == 1 and "WHERE id <=" in out
        assert "query_only" not in out and "READ ONLY" not in out  # the toolkit's bookkeeping
        wb.session.execute(wb.db.select(User.id).where(User.id == 1)).all()
        assert re.search(r"-- \d+\.\d ms(, 1 row)?\nSELECT users.id", capsys.readouterr().out)
        wb.echo = False
        User.query.count()
        assert capsys.readouterr().out == ""
    finally:
        wb.close()


def test_connect_echo_shows_statements_in_the_cells_output(seeded_app, tmp_path):
    url = seeded_app.config["SQLALCHEMY_DATABASE_URI"]
    kernel = Kernel(tmp_path, {"FLASK_APP": "my_app", "MY_APP_SQLALCHEMY_DATABASE_URI": url})
    try:
        kernel.ok("%load_ext analysis")
        quiet = kernel.ok("User.query.count()")
        assert "SELECT" not in quiet.stdout
        kernel.ok("%connect --echo my_app:create_app")
        loud = kernel.ok("User.query.filter(User.id < 5).count()")
        assert loud.stdout.count("SELECT count(*)") == 1 and " ms" in loud.stdout
        assert kernel.value("wb.echo") is True
        kernel.ok("wb.echo = False")
        assert "SELECT" not in kernel.ok("User.query.count()").stdout
    finally:
        kernel.close()
