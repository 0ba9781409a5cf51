"""``flask export`` and ``flask report``: files from the command line, one-line errors, read-only.

The commands are plugins (the ``flask.commands`` entry point), so they are invoked here as
command objects on the test app, the way ``flask --app my_app export ...`` finds them.
"""

from __future__ import annotations

import csv
import os

import pytest
import sqlalchemy as sa

from analysis.cli import export_command, report_command
from my_app.db import db


def rows_in(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_export_a_model_a_table_and_sql(runner, seeded_app, tmp_path):
    result = runner.invoke(export_command, [str(tmp_path / "users.csv"), "--model", "User"])
    assert result.exit_code == 0, result.output
    assert len(rows_in(tmp_path / "users.csv")) == 20
    assert result.stderr.startswith("Wrote 20 rows (") and result.stderr.strip().endswith(" s.")

    result = runner.invoke(export_command, [str(tmp_path / "events.parquet"), "--table", "events"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "events.parquet")) == 100

    result = runner.invoke(
        export_command,
        [str(tmp_path / "some.csv.gz"), "--sql", "SELECT id, email FROM users WHERE id <= :n ORDER BY id", "--param", "n=3"],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "some.csv.gz")["id"].tolist() == [1, 2, 3]


def test_report_list_file_and_stdout(runner, seeded_app, tmp_path):
    listing = runner.invoke(report_command, ["--list"])
    assert listing.exit_code == 0, listing.output
    for name in ("signups-by-week", "revenue-by-country", "active-users"):
        assert name in listing.stdout
    assert "since: date = 2024-01-01" in listing.stdout

    result = runner.invoke(report_command, ["signups-by-week", "-o", str(tmp_path / "s.csv"), "--param", "since=2024-01-01"])
    assert result.exit_code == 0, result.output
    weeks = rows_in(tmp_path / "s.csv")
    assert sum(int(w["signups"]) for w in weeks) == 20
    assert all(int(w["paying"]) <= int(w["signups"]) for w in weeks)

    result = runner.invoke(report_command, ["revenue-by-country", "--param", "since=2024-01-01"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("country,purchases,refunds,purchased,refunded,revenue\n")


# Each must fail with exit status 1, one line on stderr, and no file.
BAD_EXPORTS = [
    (["--model", "Usr"], "No model named 'Usr'. Did you mean 'User'?"),
    (["--table", "nope"], "No table named 'nope' in the database."),
    (["--model", "User", "--table", "users"], "exactly one of --model, --table or --sql"),
    (["--sql", "SELECT * FROM users WHERE country = :c"], "needs a value for :c"),
    (["--sql", "SELECT * FROM users WHERE country = :c", "--param", "c"], "Bad parameter 'c': write NAME=VALUE"),
    (["--sql", "SELECT * FROM users", "--param", "c=DE"], "Unknown parameter 'c'"),
    (["--sql", "SELECT * FROM no_such_table"], "The database rejected the query:"),
    (["--sql", "DELETE FROM users"], "runs queries that return rows"),
]
BAD_REPORTS = [
    (["nope"], "No report named 'nope'."),
    (["signup-by-week"], "Did you mean 'signups-by-week'?"),
    (["signups-by-week", "--param", "since=yesterday"], "Parameter 'since' of report 'signups-by-week' must be a date"),
    (["signups-by-week", "--param", "sinc=2026-01-01"], "Report 'signups-by-week' has no parameter 'sinc'"),
    (["active-users", "--param", "min_events=many"], "must be an integer"),
]


def assert_one_line_error(result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0]


def test_every_bad_export_is_one_clear_line_and_no_file(runner, seeded_app, tmp_path):
    target = tmp_path / "out" / "x.csv"
    target.parent.mkdir()
    for args, expected in BAD_EXPORTS:
        assert_one_line_error(runner.invoke(export_command, [str(target), *args]), expected)
        assert os.listdir(target.parent) == [], args
    for args, expected in BAD_REPORTS:
        assert_one_line_error(runner.invoke(report_command, [*args, "-o", str(target)]), expected)
        assert os.listdir(target.parent) == [], args


@pytest.mark.backends("sqlite")
def test_unwritable_targets_are_one_clear_line(runner, seeded_app, tmp_path):
    (tmp_path / "a-file").write_text("")
    cases = [
        (tmp_path / "missing" / "x.csv", "the directory"),
        (tmp_path / "a-file" / "x.csv", "is not a directory"),
        (tmp_path, "it is a directory"),
        (tmp_path / "x.xlsx", "Cannot tell the file format from 'x.xlsx'"),
    ]
    for path, expected in cases:
        assert_one_line_error(runner.invoke(export_command, [str(path), "--model", "User"]), expected)
    assert [name for name in os.listdir(tmp_path) if not name.startswith("app.sqlite")] == ["a-file"]


@pytest.mark.backends("postgresql")
def test_the_commands_cannot_write(runner, seeded_app, tmp_path):
    # A SELECT that writes: nextval() advances a sequence. The COPY route's transaction is
    # read-only, so PostgreSQL refuses it.
    sql = "SELECT nextval(pg_get_serial_sequence('users', 'id')) AS next_id"
    result = runner.invoke(export_command, [str(tmp_path / "x.csv"), "--sql", sql])
    assert_one_line_error(result, "read-only transaction")
    assert not (tmp_path / "x.csv").exists()
    with seeded_app.app_context():
        called = db.session.scalar(sa.text("SELECT is_called FROM users_id_seq"))
        db.session.remove()
    assert called is False  # never advanced (the seed inserts explicit ids)
