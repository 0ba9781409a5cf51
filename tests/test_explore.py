"""wb.profile() and wb.histogram(): computed in the database, equal to pandas on the same rows."""

from __future__ import annotations

import datetime as dt
import math
import re
import typing as t

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import analysis
from my_app.models import Event, User

pytestmark = pytest.mark.backends("sqlite", "postgresql")


@pytest.fixture
def wb(seeded_app) -> t.Iterator[analysis.Workbench]:
    workbench = analysis.connect(seeded_app)
    yield workbench
    workbench.close()


def same_moment(ours: t.Any, theirs: t.Any) -> bool:
    if isinstance(theirs, pd.Timestamp):
        ours = pd.Timestamp(ours)
        if theirs.tzinfo is not None and ours.tzinfo is None:
            ours = ours.tz_localize("UTC")
    elif isinstance(theirs, dt.date) and isinstance(ours, dt.datetime):
        ours = ours.date()
    return bool(ours == theirs)


@pytest.mark.parametrize("model", [User, Event], ids=["users", "events"])
def test_profile_matches_pandas_on_the_same_rows(wb, model):
    profile = wb.profile(model)
    frame = wb.frame(model, progress=False)
    assert list(profile.index) == list(frame.columns)
    assert list(profile.columns) == ["type", "count", "nulls", "distinct", "min", "max", "mean", "std", "top", "top_freq"]
    for name in frame.columns:
        column, row = frame[name], profile.loc[name]
        values = column.dropna()
        assert row["count"] == column.count(), name
        assert row["nulls"] == column.isna().sum(), name
        assert row["distinct"] == column.nunique(), name
        counts = values.value_counts()
        assert row["top_freq"] == counts.max(), name
        assert row["top"] in set(counts[counts == counts.max()].index), name
        if isinstance(column.dtype, pd.CategoricalDtype):
            continue  # an Enum: no order to take a minimum in
        assert same_moment(row["min"], values.min()), (name, row["min"], values.min())
        assert same_moment(row["max"], values.max()), (name, row["max"], values.max())
        if column.dtype.kind in "iufb" or str(column.dtype) in ("Int64", "Float64", "boolean") or name == "amount":
            numbers = values.astype(float)
            assert math.isclose(row["mean"], numbers.mean(), rel_tol=1e-9), name
            assert math.isclose(row["std"], numbers.std(), rel_tol=1e-9), name
        else:
            assert pd.isna(row["mean"]) and pd.isna(row["std"]), name


def test_profile_takes_any_query_frame_takes(wb):
    german = wb.profile(User.query.filter_by(country="DE"))
    assert german.loc["country", "distinct"] in (0, 1)
    raw = wb.profile("SELECT amount, kind FROM events WHERE amount IS NOT NULL AND kind = :kind", params={"kind": "purchase"})
    expected = wb.frame(sa.select(Event.amount).where(Event.kind == "purchase", Event.amount.is_not(None)))
    assert raw.loc["amount", "count"] == len(expected)
    assert math.isclose(raw.loc["amount", "mean"], expected["amount"].astype(float).mean(), rel_tol=1e-9)
    assert raw.loc["kind", "top"] == "purchase" and raw.loc["kind", "distinct"] == 1


def test_profile_shows_the_share_of_nulls_as_a_bar(wb):
    html = wb.profile(User)._repr_html_()
    bio_nulls = wb.frame(User)["bio"].isna().mean()
    assert "NULL share" in html and f"{bio_nulls:.1%} NULL" in html


def test_histogram_of_numbers_matches_numpy(wb):
    amounts = wb.frame(Event)["amount"].dropna().astype(float).to_numpy()
    histogram = wb.histogram(Event, "amount", bins=7)
    counts, edges = np.histogram(amounts, bins=7)
    assert histogram["count"].tolist() == counts.tolist()
    assert np.allclose(histogram["left"], edges[:-1]) and np.allclose(histogram["right"], edges[1:])


def test_histogram_of_timestamps_has_timestamp_edges(wb):
    signups = wb.frame(User)["signed_up_at"]
    histogram = wb.histogram(User, "signed_up_at", bins=5)
    assert int(histogram["count"].sum()) == signups.count()
    assert histogram["left"].iloc[0] == signups.min()
    assert abs(histogram["right"].iloc[-1] - signups.max()) < pd.Timedelta(milliseconds=1)


def test_histogram_of_text_and_enums_is_value_counts(wb):
    kinds = wb.histogram(Event, "kind")
    expected = wb.frame(Event)["kind"].value_counts()
    assert dict(zip(kinds["value"], kinds["count"], strict=True)) == expected.to_dict()
    assert kinds["count"].is_monotonic_decreasing
    plans = wb.histogram(User, "plan")
    assert int(plans["count"].sum()) == 20


def test_histogram_plots_and_refuses_bad_arguments(wb):
    import matplotlib

    matplotlib.use("Agg")
    ax = wb.histogram(Event, "score", bins=10).plot()
    assert len(ax.patches) == 10
    with pytest.raises(analysis.QueryError, match="No column named 'nope'; the query's columns are"):
        wb.histogram(Event, "nope")
    with pytest.raises(ValueError, match="bins must be a positive number"):
        wb.histogram(Event, "score", bins=0)


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_schema_shows_every_model_key_and_relationship(seeded_app, tmp_path):
    wb = analysis.connect(seeded_app)
    try:
        schema = wb.schema()
        mermaid, text, html = schema.mermaid(), str(schema), schema.html()
        bundle = schema._repr_mimebundle_()
        assert set(bundle) == {"text/vnd.mermaid", "image/svg+xml", "text/plain"}
        assert bundle["image/svg+xml"].startswith("<svg ") and "User" in bundle["image/svg+xml"]
        for mapper in wb.db.Model.registry.mappers:
            model, table = mapper.class_.__name__, mapper.local_table
            assert f"    {model} {{" in mermaid and f"{model} ({table.name}, " in text and model in html
            for column in table.columns:
                assert f"  {column.name}: " in text
                if column.primary_key:
                    assert re.search(rf"\b{column.name} PK\b", mermaid), (model, column.name)
                for fk in column.foreign_keys:
                    target = f"{fk.column.table.name}.{fk.column.name}"
                    assert re.search(rf"\b{column.name} FK \"{re.escape(target)}", mermaid)
                    assert f"FK -> {target}" in text
            for rel in mapper.relationships:
                assert f"{model}.{rel.key}" in mermaid and f"{model}.{rel.key}" in text
        assert 'User ||--o{ Event : "' in mermaid  # events.user_id is NOT NULL
        assert 'User |o--o{ User : "User.referrer"' in mermaid  # referrer_id may be NULL
        assert "User (users, 20 rows)" in text and '"20 rows"' in mermaid
        assert "User one-to-many Event: " in text
        only = wb.schema(["User", Event])
        assert [t.model for t in only.tables] == ["Event", "User"]
        with pytest.raises(analysis.QueryError, match="No model named Nope; the app's models are"):
            wb.schema(["Nope"])
        assert (tmp_path / "s.md").exists() is False
        schema.save(tmp_path / "s.md")
        assert (tmp_path / "s.md").read_text().startswith("```mermaid\nerDiagram\n")
        schema.save(tmp_path / "s.svg")
        assert (tmp_path / "s.svg").read_text() == schema.svg()
        schema.save(tmp_path / "s.txt")
        assert (tmp_path / "s.txt").read_text() == text + "\n"
        with pytest.raises(ValueError, match="Cannot save a schema as '.png'"):
            schema.save(tmp_path / "s.png")
    finally:
        wb.close()


def test_a_primary_key_repeated_by_a_join_is_still_counted(wb):
    joined = wb.profile(sa.select(User.id, Event.kind).join(Event, Event.user_id == User.id))
    frame = wb.frame(sa.select(User.id, Event.kind).join(Event, Event.user_id == User.id))
    assert joined.loc["id", "distinct"] == frame["id"].nunique() < len(frame)
    assert joined.loc["id", "top_freq"] == frame["id"].value_counts().max()
    alone = wb.profile(User)
    assert alone.loc["id", "distinct"] == 20 and alone.loc["id", "top_freq"] == 1
