from __future__ import annotations

import sqlalchemy as sa

from my_app.db import db
from my_app.models import Data, Event, User


def count(app, model):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_init_db_is_idempotent(runner, app):
    first = runner.invoke(args=["init-db"])
    second = runner.invoke(args=["init-db"])
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert "Initialised" in second.output
    with app.app_context():
        assert set(sa.inspect(db.engine).get_table_names()) >= {"users", "events", "data", "api_keys"}


def test_seed_creates_exactly_the_requested_rows(runner, app):
    result = runner.invoke(args=["seed", "--users", "50", "--events", "1200", "--data-points", "30"])
    assert result.exit_code == 0, result.output
    assert (count(app, User), count(app, Event), count(app, Data)) == (50, 1200, 30)


def test_seed_is_deterministic(runner, app):
    def snapshot():
        with app.app_context():
            return db.session.execute(
                sa.select(Event.user_id, Event.kind, Event.amount, Event.occurred_at).order_by(Event.id)
            ).all()

    runner.invoke(args=["seed", "--users", "20", "--events", "300"])
    first = snapshot()
    result = runner.invoke(args=["seed", "--users", "20", "--events", "300", "--reset"])
    assert result.exit_code == 0, result.output
    assert snapshot() == first


def test_seed_refuses_to_duplicate_and_if_empty_skips(runner, app):
    runner.invoke(args=["seed", "--users", "5", "--events", "10"])
    again = runner.invoke(args=["seed", "--users", "5", "--events", "10"])
    assert again.exit_code == 1
    assert "already has 5 users" in again.output and "--reset" in again.output
    skipped = runner.invoke(args=["seed", "--users", "5", "--events", "10", "--if-empty"])
    assert skipped.exit_code == 0
    assert count(app, User) == 5


def test_drop_db_asks_for_confirmation(runner, app):
    runner.invoke(args=["seed", "--users", "3", "--events", "3"])
    declined = runner.invoke(args=["drop-db"], input="n\n")
    assert declined.exit_code != 0
    assert count(app, User) == 3
    accepted = runner.invoke(args=["drop-db", "--yes"])
    assert accepted.exit_code == 0, accepted.output
    with app.app_context():
        assert "users" not in sa.inspect(db.engine).get_table_names()
