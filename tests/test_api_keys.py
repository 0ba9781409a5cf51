"""API keys: random, shown once, stored as a hash, compared in constant time, revocable."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import statistics
import time
import typing as t

import pytest
import sqlalchemy as sa

from my_app import api_keys
from my_app.db import db
from my_app.models import ApiKey, Data

KEY_RE = re.compile(r"myapp_[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{43}")


def create_key(runner: t.Any, name: str) -> str:
    """Create a key through the CLI, as an operator would, and return the printed key."""
    result = runner.invoke(args=["api-key", "create", name])
    assert result.exit_code == 0, result.output
    keys = KEY_RE.findall(result.output)
    assert len(keys) == 1, result.output
    return keys[0]


def post(client: t.Any, key: str | None, payload: t.Any = None, **headers: str) -> t.Any:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return client.post("/api/v1/data", json=payload or {"value": 1.0}, headers=headers)


def all_stored_text(app: t.Any) -> str:
    """Every value of every row of every table, as text: where a leaked key would show up."""
    with app.app_context():
        metadata = sa.MetaData()
        metadata.reflect(db.engine)
        parts = []
        for table in metadata.sorted_tables:
            for row in db.session.execute(sa.select(table)):
                parts.extend(str(value) for value in row)
        return "\n".join(parts)


def test_the_database_holds_no_plaintext_key(app, runner, client, backend, tmp_path):
    key = create_key(runner, "nightly-import")
    secret = key.split(".", 1)[1]
    assert post(client, key).status_code == 201  # used once, so last_used_at was written too

    stored = all_stored_text(app)
    assert secret not in stored and key not in stored
    with app.app_context():
        row = db.session.scalars(sa.select(ApiKey)).one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.prefix == key.split(".")[0]
    if backend == "sqlite":  # also the raw file and its write-ahead log, byte for byte
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("app.sqlite*"))
        assert raw and secret.encode() not in raw


@pytest.mark.backends("sqlite", "postgresql")
def test_keys_are_random_and_distinct(app):
    with app.app_context():
        keys = {api_keys.create_api_key(f"job-{i}").key for i in range(20)}
    assert len(keys) == 20
    assert all(KEY_RE.fullmatch(key) for key in keys)
    assert len({key.split(".")[0] for key in keys}) == 20


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_a_revoked_key_gets_401_like_an_unknown_one(app, runner, client):
    key = create_key(runner, "cron")
    assert post(client, key).status_code == 201

    result = runner.invoke(args=["api-key", "revoke", "cron"])
    assert result.exit_code == 0, result.output
    revoked = post(client, key)
    unknown = post(client, api_keys.generate_key()[0])
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.get_json() == unknown.get_json()
    assert revoked.headers["WWW-Authenticate"].lower().startswith("bearer")

    with app.app_context():
        assert db.session.scalars(sa.select(ApiKey)).one().revoked_at is not None


@pytest.mark.backends("sqlite", "postgresql")
def test_revoking_one_key_leaves_the_others_working(runner, client):
    first, second = create_key(runner, "first"), create_key(runner, "second")
    runner.invoke(args=["api-key", "revoke", "first"])
    assert post(client, first).status_code == 401
    assert post(client, second).status_code == 201


@pytest.mark.backends("sqlite", "postgresql")
def test_last_used_at_is_recorded(app, runner, client):
    key = create_key(runner, "cron")
    with app.app_context():
        assert db.session.scalars(sa.select(ApiKey)).one().last_used_at is None
    assert post(client, key).status_code == 201
    with app.app_context():
        used = db.session.scalars(sa.select(ApiKey)).one()
        assert used.last_used_at is not None and used.last_used_at >= used.created_at
    listing = runner.invoke(args=["api-key", "list"]).output
    assert f"{used.last_used_at:%Y-%m-%d %H:%M}" in listing


@pytest.mark.backends("sqlite", "postgresql")
def test_list_and_admin_page_show_names_never_keys(runner, client, admin_auth):
    key = create_key(runner, "weather-station")
    runner.invoke(args=["api-key", "revoke", "weather-station"])
    create_key(runner, "nightly")
    secret = key.split(".", 1)[1]

    listing = runner.invoke(args=["api-key", "list"])
    assert listing.exit_code == 0
    assert "weather-station" in listing.output and "nightly" in listing.output
    assert "revoked" in listing.output and "active" in listing.output
    assert secret not in listing.output

    page = client.get("/admin/", auth=admin_auth).get_data(as_text=True)
    assert "weather-station" in page and "revoked" in page
    assert secret not in page


@pytest.mark.backends("sqlite", "postgresql")
def test_cli_errors_are_one_line_messages(runner):
    assert "No API keys yet" in runner.invoke(args=["api-key", "list"]).output
    create_key(runner, "cron")

    duplicate = runner.invoke(args=["api-key", "create", "cron"])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    unknown = runner.invoke(args=["api-key", "revoke", "nope"])
    assert unknown.exit_code == 1 and "No API key named 'nope'" in unknown.output
    assert "api-key list" in unknown.output
    runner.invoke(args=["api-key", "revoke", "cron"])
    again = runner.invoke(args=["api-key", "revoke", "cron"])
    assert again.exit_code == 1 and "already revoked" in again.output
    reused = runner.invoke(args=["api-key", "create", "cron"])
    assert reused.exit_code == 1 and "revoked" in reused.output
    blank = runner.invoke(args=["api-key", "create", "  "])
    assert blank.exit_code == 1 and "needs a name" in blank.output
    assert "Traceback" not in "".join(r.output for r in (duplicate, unknown, again, reused, blank))


@pytest.mark.backends("sqlite")
def test_cli_says_to_run_init_db_when_the_table_is_missing(tmp_path):
    from my_app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.sqlite'}"})
    result = app.test_cli_runner().invoke(args=["api-key", "list"])
    assert result.exit_code == 1
    assert "flask --app my_app init-db" in result.output


@pytest.mark.backends("sqlite")
def test_every_check_goes_through_compare_digest(app, monkeypatch):
    """Whatever the client sends with a well-formed key, the decision is one
    ``hmac.compare_digest`` of two fixed-length digests: never ``==`` on the key."""
    calls: list[tuple[str, str]] = []
    real_compare_digest = hmac.compare_digest

    def recording_compare_digest(a: t.Any, b: t.Any) -> bool:
        calls.append((a, b))
        return real_compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording_compare_digest)
    with app.app_context():
        key = api_keys.create_api_key("cron").key
        prefix = key.split(".")[0]
        wrong_secret = f"{prefix}.{'A' * 43}"
        unknown_prefix = api_keys.generate_key()[0]
        almost = key[:-1] + ("A" if key[-1] != "A" else "B")

        outcomes = []
        for presented in (key, wrong_secret, almost, unknown_prefix):
            calls.clear()
            outcomes.append(api_keys.authenticate(f"Bearer {presented}") is not None)
            assert len(calls) == 1, presented
            ((a, b),) = calls
            assert len(a) == len(b) == 64 and re.fullmatch(r"[0-9a-f]{128}", a + b)
            assert presented not in (a, b)
        db.session.rollback()
    assert outcomes == [True, False, False, False]


def test_comparison_time_does_not_depend_on_how_much_of_the_key_matches():
    """A bounded timing check of :func:`api_keys.keys_match`, robust on a busy machine.

    The same harness first shows it *can* see a leak: a character-by-character comparison
    that stops at the first difference is clearly slower when 57 of 58 characters match.
    Then the real check must show no such difference. Minimum-of-rounds timings are used
    because noise on a shared machine only ever adds time.
    """
    key, _ = api_keys.generate_key()
    stored = api_keys.hash_key(key)
    mismatch_first = ("B" if key[0] != "B" else "C") + key[1:]
    mismatch_last = key[:-1] + ("B" if key[-1] != "B" else "C")

    def leaky_match(presented: str, expected: str) -> bool:
        for x, y in zip(presented, expected, strict=False):
            if x != y:
                return False
        return len(presented) == len(expected)

    def best_of(
        fn: t.Callable[[str, str], bool], a: str, b: str, other: str
    ) -> tuple[float, float]:
        per_call: dict[str, list[float]] = {a: [], b: []}
        for _ in range(15):
            for presented in (a, b):  # interleaved, so drift hits both alike
                start = time.perf_counter()
                for _ in range(400):
                    fn(presented, other)
                per_call[presented].append((time.perf_counter() - start) / 400)
        return min(per_call[a]), min(per_call[b])

    early, late = best_of(leaky_match, mismatch_first, mismatch_last, key)
    assert late > 3 * early, "the harness should detect an early-exit comparison"

    ratios = []
    for _ in range(3):
        early, late = best_of(api_keys.keys_match, mismatch_first, mismatch_last, stored)
        ratios.append(late / early)
    assert 0.75 < statistics.median(ratios) < 1.33, ratios


@pytest.mark.backends("sqlite", "postgresql")
def test_keys_never_appear_in_logs(app, runner, client, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # SQL and bound parameters
    key = create_key(runner, "cron")
    secret = key.split(".", 1)[1]
    assert post(client, key).status_code == 201
    assert post(client, f"{key.split('.')[0]}.{'x' * 43}").status_code == 401
    assert post(client, key, {"value": "nope"}).status_code == 400
    with app.app_context():
        assert api_keys.authenticate(f"Bearer {key}") is not None
        db.session.rollback()

    assert "inserted 1 row(s) for API key 'cron'" in caplog.text  # logging was captured
    assert "SELECT" in caplog.text
    assert secret not in caplog.text and key not in caplog.text


def last_used(app: t.Any) -> t.Any:
    with app.app_context():
        return db.session.scalars(sa.select(ApiKey.last_used_at)).one()


@pytest.mark.backends("sqlite", "postgresql")
def test_last_used_at_is_written_at_most_once_per_interval(app, runner, client):
    key = create_key(runner, "cron")
    assert post(client, key).status_code == 201
    first = last_used(app)
    assert post(client, key).status_code == 201 and post(client, key).status_code == 201
    assert last_used(app) == first  # within the minute: no write
    app.config["API_KEY_LAST_USED_INTERVAL_SECONDS"] = 0
    assert post(client, key).status_code == 201
    assert last_used(app) > first


@pytest.mark.backends("sqlite", "postgresql")
def test_a_failing_last_used_at_update_never_fails_the_request(app, runner, client, backend, caplog):
    key = create_key(runner, "cron")
    with app.app_context():
        if backend == "sqlite":
            db.session.execute(sa.text(
                "CREATE TRIGGER refuse_last_used BEFORE UPDATE OF last_used_at ON api_keys"
                " BEGIN SELECT RAISE(ABORT, 'last_used_at is read-only today'); END"
            ))
        else:
            db.session.execute(sa.text(
                "CREATE FUNCTION refuse_last_used() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'last_used_at is read-only today'; END $$"
            ))
            db.session.execute(sa.text(
                "CREATE TRIGGER refuse_last_used BEFORE UPDATE OF last_used_at ON api_keys"
                " FOR EACH ROW EXECUTE FUNCTION refuse_last_used()"
            ))
        db.session.commit()
    response = post(client, key, [{"value": 1.0}, {"value": 2.0}])
    assert response.status_code == 201 and response.get_json()["count"] == 2
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Data)) == 2
    assert last_used(app) is None
    [warning] = [r for r in caplog.records if "could not record the use of API key" in r.getMessage()]
    assert warning.levelname == "WARNING" and "read-only today" in warning.getMessage()


def test_api_key_names_compare_exactly_on_every_backend(runner):
    """'cron' and 'Cron' are two names everywhere, also on MariaDB, whose default collation
    ignores case and accents; surrounding spaces and Unicode normalisation do not count."""
    for name in ("cron", "Cron", "résumé", "resume"):
        create_key(runner, name)
    for same in ("cron ", " Cron", "re\u0301sume\u0301"):  # the last: 'é' as 'e' + combining accent
        result = runner.invoke(args=["api-key", "create", same])
        assert result.exit_code == 1 and "already exists" in result.output, (same, result.output)
    unknown = runner.invoke(args=["api-key", "revoke", "CRON"])
    assert unknown.exit_code == 1 and "No API key named 'CRON'" in unknown.output
    assert runner.invoke(args=["api-key", "revoke", "Cron"]).exit_code == 0
    listing = runner.invoke(args=["api-key", "list"]).output
    lines = listing.splitlines()[1:]
    states = {line.split()[0]: "revoked" if " revoked " in line else line.split()[-1] for line in lines}
    assert states == {"cron": "active", "Cron": "revoked", "résumé": "active", "resume": "active"}
