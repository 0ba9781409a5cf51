"""resolve_query: every query form -> a statement with predictable names and known types."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Bundle, aliased

import analysis
from analysis.errors import QueryError
from analysis.read.queries import ResolvedQuery, resolve_query, unique_names
from my_app.db import db
from my_app.models import Event, User

USER_COLUMNS = ["id", "email", "name", "country", "active", "plan", "signed_up_at", "birth_date", "referrer_id", "bio"]


@pytest.fixture
def wb(seeded_app: Flask) -> t.Iterator[analysis.Workbench]:
    workbench = analysis.connect(seeded_app)
    yield workbench
    workbench.close()


def run(wb: analysis.Workbench, resolved: ResolvedQuery) -> tuple[list[str], list[t.Any]]:
    with wb.engine.connect() as conn:
        result = conn.execute(resolved.statement, resolved.params)
        return list(result.keys()), result.all()


@pytest.mark.backends("sqlite")
def test_every_form_resolves_to_names_and_types(wb):
    u2 = aliased(User, name="u2")
    cases: list[tuple[t.Any, list[str]]] = [
        (User, USER_COLUMNS),
        (User.__table__, USER_COLUMNS),
        (User.query.filter_by(country="DE"), USER_COLUMNS),
        (db.session.query(User.id, User.email), ["id", "email"]),
        (sa.select(u2).join(User, u2.referrer_id == User.id), USER_COLUMNS),
        (sa.select(User.id, User.email.label("mail"), sa.literal(1), User.id + 1), ["id", "mail", "column_3", "column_4"]),
        (sa.select(User.country, sa.func.count(Event.id)).join(User.events).group_by(User.country), ["country", "count"]),
        (sa.select(Bundle("who", User.id, User.name)), ["id", "name"]),
        (sa.union_all(sa.select(User.id), sa.select(Event.id)), ["id"]),
        (User.email, ["email"]),
    ]
    for query, names in cases:
        resolved = resolve_query(query)
        assert resolved.names == names, query
        assert len(resolved.types) == len(names) and all(ty is not None for ty in resolved.types)
        keys, rows = run(wb, resolved)
        assert keys == names and rows, query
    joined = resolve_query(sa.select(User, Event).join(User.events))
    assert joined.names[:11] == [*USER_COLUMNS, "id_1"] and joined.names.count("id") == 1
    assert type(joined.types[USER_COLUMNS.index("plan")]) is sa.Enum
    assert run(wb, joined)[0] == joined.names


def test_raw_sql_columns_are_described_by_the_database(wb):
    resolved = resolve_query(
        "SELECT u.id, e.id, u.email AS mail FROM users u JOIN events e ON e.user_id = u.id WHERE u.country = :c;",
        params={"c": "DE"}, session=wb.session,
    )
    assert resolved.names == ["id", "id_1", "mail"] and resolved.types == [None, None, None]
    assert resolved.params == {"c": "DE"}
    keys, rows = run(wb, resolved)
    assert len(keys) == 3 and rows
    assert wb.engine.pool.checkedout() == 0 and not wb.session().in_transaction()
    typed = resolve_query(sa.text("SELECT id, email FROM users").columns(sa.column("id", sa.Integer), sa.column("email", sa.String)))
    assert typed.names == ["id", "email"] and isinstance(typed.types[0], sa.Integer)


@pytest.mark.backends("sqlite")
def test_what_is_not_a_query_is_refused_clearly(wb):
    for bad, message in [
        (3.5, r"Cannot make a DataFrame from a builtins.float"),
        ([User], r"Cannot make a DataFrame from a builtins.list"),
        ("   ", r"The SQL string is empty"),
        ("UPDATE users SET name = 'x'", r"starts with UPDATE. Use db.session.execute"),
        (sa.update(User).values(name="x"), r"Update statements do not return rows"),
        ("SELECT * FROM users WHERE id = :id AND name = :name", r"needs a value for :id, :name"),
    ]:
        with pytest.raises(QueryError, match=message):
            resolve_query(bad)
    with pytest.raises(QueryError, match=r"Unknown parameter 'country'"):
        resolve_query(User, params={"country": "DE"})
    with pytest.raises(QueryError, match=r"rejected the query: .*no such column: nope"):
        resolve_query("SELECT nope FROM users", session=wb.session)


@given(st.lists(st.sampled_from(["id", "id_1", "id_2", "name", "x"]), max_size=8))
@settings(max_examples=60, deadline=None)
def test_unique_names_are_unique_and_keep_first_and_given_names(names):
    result = unique_names(names)
    assert len(result) == len(names) and len(set(result)) == len(result)
    assert unique_names(names) == result  # deterministic
    for i, name in enumerate(names):
        if name not in names[:i]:
            assert result[i] == name  # the first occurrence keeps its name
        else:
            assert result[i].startswith(name + "_")


@pytest.mark.backends("sqlite")
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_text_parameters_round_trip_unchanged(wb, value):
    frame = wb.frame("SELECT :value AS value", params={"value": value})
    assert frame["value"].tolist() == [value]
