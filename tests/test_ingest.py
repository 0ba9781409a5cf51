"""POST /api/v1/data: responses, all-or-nothing batches, size limit, idempotency."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa

from my_app import api_keys
from my_app.db import db
from my_app.models import ApiKey, Data, IdempotencyRecord

URL = "/api/v1/data"
UNAUTHORIZED = "A valid API key is required"
ATTEMPTS = 4


@pytest.fixture
def key(app: t.Any) -> str:
    with app.app_context():
        return api_keys.create_api_key("cron").key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def rows(app: t.Any) -> list[tuple[int, float, str | None, dt.datetime]]:
    with app.app_context():
        return [
            tuple(r)
            for r in db.session.execute(
                sa.select(Data.id, Data.value, Data.source, Data.created_at).order_by(Data.id)
            )
        ]


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_one_record_is_inserted_and_its_id_returned(app, client, key):
    before = dt.datetime.now(dt.timezone.utc)
    response = client.post(URL, json={"value": 21.5, "source": "sensor-1"}, headers=bearer(key))
    assert response.status_code == 201
    body = response.get_json()
    assert body["count"] == 1
    [(row_id, value, source, created_at)] = rows(app)
    assert body["ids"] == [row_id]
    assert (value, source) == (21.5, "sensor-1")
    assert before - dt.timedelta(seconds=1) <= created_at <= dt.datetime.now(dt.timezone.utc)


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_a_batch_returns_ids_in_record_order(app, client, key):
    records = [
        {"value": i * 1.25, "source": f"s{i}", "created_at": f"2024-05-01T12:{i:02d}:00+02:00"}
        for i in range(60)
    ]
    records[7] = {"value": -3}  # optional fields may be left out
    response = client.post(URL, json=records, headers=bearer(key))
    assert response.status_code == 201, response.get_json()
    ids = response.get_json()["ids"]
    stored = {
        row_id: (value, source, created_at) for row_id, value, source, created_at in rows(app)
    }
    assert len(ids) == len(stored) == 60
    for record, row_id in zip(records, ids, strict=True):
        value, source, created_at = stored[row_id]
        assert value == record["value"] and source == record.get("source")
        if "created_at" in record:
            assert created_at == dt.datetime.fromisoformat(record["created_at"])
            assert created_at.utcoffset() == dt.timedelta(0)


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer myapp_AAAAAAAA.tooshort",
        "Bearer myapp_AAAAAAAA." + "A" * 43,  # well formed, unknown prefix
        "Bearer  myapp_é" + "A" * 50,
    ],
)
def test_every_kind_of_bad_key_gets_the_same_401(app, client, key, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post(URL, json={"value": 1}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer realm=my_app"
    assert response.get_json() == {
        "error": "Unauthorized",
        "message": "A valid API key is required: send 'Authorization: Bearer <key>'."
        " Create a key with: flask --app my_app api-key create NAME",
    }
    assert rows(app) == []


@pytest.mark.backends("sqlite", "postgresql")
def test_a_wrong_secret_with_a_real_prefix_gets_the_same_401(app, client, key):
    prefix = key.split(".")[0]
    response = client.post(URL, json={"value": 1}, headers=bearer(f"{prefix}.{'A' * 43}"))
    assert response.status_code == 401 and UNAUTHORIZED in response.get_json()["message"]
    lowercase_scheme = client.post(
        URL, json={"value": 1}, headers={"Authorization": f"bearer {key}"}
    )
    assert lowercase_scheme.status_code == 201


@pytest.mark.backends("sqlite")
def test_authentication_comes_before_looking_at_the_body(client):
    response = client.post(URL, data="not json", content_type="text/plain")
    assert response.status_code == 401


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({}, "value", "'value' is required"),
        ({"value": "1.5"}, "value", "must be a number, got a string"),
        ({"value": True}, "value", "must be a number, got a boolean"),
        ({"value": None}, "value", "got null"),
        ({"value": 1e308 * 10}, "value", "out of range"),
        ({"value": 10**400}, "value", "out of range"),
        ({"value": 1, "sorce": "typo"}, "sorce", "unknown field 'sorce'"),
        ({"value": 1, "id": 5}, "id", "unknown field 'id'"),
        ({"value": 1, "source": 5}, "source", "must be a string or null"),
        ({"value": 1, "source": "x" * 121}, "source", "the limit is 120"),
        ({"value": 1, "source": "a\x00b"}, "source", "NUL"),
        ({"value": 1, "source": "\ud800"}, "source", "unpaired surrogate"),
        ({"value": 1, "created_at": "yesterday"}, "created_at", "ISO 8601"),
        ({"value": 1, "created_at": "2024-05-01T12:00:00"}, "created_at", "time zone"),
        ({"value": 1, "created_at": "0001-01-01T00:00:00+01:00"}, "created_at", "between"),
        ({"value": 1, "created_at": 1714564800}, "created_at", "ISO 8601"),
        ([{"value": 1}, {"value": 2}, {"valeu": 3}], "[2].valeu", "record 2: unknown field"),
        ([{"value": 1}, 7], "[1]", "record 1: expected an object"),
        ([], "", "empty list"),
        ("just a string", "", "record object or a list"),
    ],
)
def test_schema_errors_are_400_and_name_the_field(app, client, key, payload, field, words):
    # json.dumps, not the client's json=, so that 1e309 and lone surrogates reach the server
    body = json.dumps(payload).replace("Infinity", "1e309")
    response = client.post(URL, data=body, content_type="application/json", headers=bearer(key))
    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert error["field"] == field and words in error["message"], error
    assert rows(app) == []


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"value": 1', "Expecting"),
        ('{"value": NaN}', "NaN is not a JSON number"),
        ('{"value": -Infinity}', "-Infinity is not a JSON number"),
        ("", "Expecting value"),
        ("\xff", "not UTF-8"),
        ("[" * 100_000, "nested too deeply"),
        ('{"value": 1}x', "Extra data"),
        ('{"value": ' + "9" * 5000 + "}", "too many digits"),
    ],
)
def test_invalid_json_is_400(app, client, key, body, words):
    data = body.encode("latin-1")
    response = client.post(URL, data=data, content_type="application/json", headers=bearer(key))
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert message.startswith("The body is not valid JSON") and words in message, message
    assert rows(app) == []


@pytest.mark.backends("sqlite", "postgresql")
def test_a_bad_record_at_the_end_inserts_nothing(app, client, key):
    records = [{"value": float(i)} for i in range(500)] + [{"value": 1, "source": "x" * 500}]
    response = client.post(URL, json=records, headers=bearer(key))
    assert response.status_code == 400 and response.get_json()["field"] == "[500].source"
    assert rows(app) == []


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_non_json_content_type_is_415(app, client, key, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post(URL, data='{"value": 1}', headers=bearer(key), **kwargs)
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.get_json()["message"]
    assert rows(app) == []


@pytest.mark.backends("sqlite")
def test_a_compressed_body_is_415(app, client, key):
    import gzip

    headers = {**bearer(key), "Content-Encoding": "gzip"}
    body = gzip.compress(b'{"value": 1}')
    response = client.post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 415 and "uncompressed" in response.get_json()["message"]
    assert rows(app) == []


@pytest.mark.backends("sqlite")
def test_json_media_types_with_parameters_or_suffixes_are_accepted(client, key):
    for content_type in ("application/json; charset=utf-8", "application/vnd.readings+json"):
        response = client.post(
            URL, data='{"value": 1}', content_type=content_type, headers=bearer(key)
        )
        assert response.status_code == 201, content_type


@pytest.mark.backends("sqlite", "postgresql")
def test_the_size_limit_is_1_mb_by_default(app, client, key):
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    record = b'{"value": 1}'
    fits = record + b" " * (1024 * 1024 - len(record))
    assert (
        client.post(
            URL, data=fits, content_type="application/json", headers=bearer(key)
        ).status_code
        == 201
    )
    too_big = client.post(
        URL, data=fits + b" ", content_type="application/json", headers=bearer(key)
    )
    assert too_big.status_code == 413
    assert "1,048,576 bytes (MAX_CONTENT_LENGTH)" in too_big.get_json()["message"]
    assert len(rows(app)) == 1


@pytest.mark.backends("sqlite")
def test_the_size_limit_is_configurable(database_url, key):
    from my_app import create_app

    small = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "MAX_CONTENT_LENGTH": 100})
    client = small.test_client()
    fine = client.post(URL, json=[{"value": 1}] * 5, headers=bearer(key))
    assert fine.status_code == 201
    big = client.post(URL, json=[{"value": 1}] * 20, headers=bearer(key))
    assert big.status_code == 413 and "100 bytes" in big.get_json()["message"]
    with small.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Data)) == 5
        db.session.remove()
        db.engine.dispose()


@pytest.mark.backends("sqlite")
def test_get_is_405_in_json(client, key):
    response = client.get(URL, headers=bearer(key))
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert response.get_json()["error"] == "Method Not Allowed"


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_the_same_idempotency_key_sent_twice_inserts_once(app, client, key):
    headers = {**bearer(key), "Idempotency-Key": "2024-05-01-nightly"}
    records = [{"value": 1.5}, {"value": 2.5, "source": "a"}]
    first = client.post(URL, json=records, headers=headers)
    # a retry may be spaced differently; the request is the same
    retry = client.post(
        URL, data=json.dumps(records, indent=2), content_type="application/json", headers=headers
    )
    assert first.status_code == retry.status_code == 201
    assert retry.get_json() == first.get_json()
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert [r[0] for r in rows(app)] == first.get_json()["ids"]


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_reusing_an_idempotency_key_for_another_body_is_422(app, client, key):
    headers = {**bearer(key), "Idempotency-Key": "abc"}
    assert client.post(URL, json={"value": 1}, headers=headers).status_code == 201
    other = client.post(URL, json={"value": 2}, headers=headers)
    assert other.status_code == 422
    assert "different body" in other.get_json()["message"]
    # keys are case-sensitive, also where the column collation is not (MariaDB)
    upper = client.post(URL, json={"value": 2}, headers={**bearer(key), "Idempotency-Key": "ABC"})
    assert upper.status_code == 201
    assert [r[1] for r in rows(app)] == [1.0, 2.0]


@pytest.mark.backends("sqlite", "postgresql")
def test_idempotency_keys_belong_to_one_api_key(app, client, key):
    with app.app_context():
        other_key = api_keys.create_api_key("other-job").key
    for k in (key, other_key):
        response = client.post(
            URL, json={"value": 1}, headers={**bearer(k), "Idempotency-Key": "k"}
        )
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert len(rows(app)) == 2


@pytest.mark.backends("sqlite", "postgresql")
def test_an_expired_idempotency_key_is_forgotten(app, client, key):
    headers = {**bearer(key), "Idempotency-Key": "k"}
    assert client.post(URL, json={"value": 1}, headers=headers).status_code == 201
    app.config["API_IDEMPOTENCY_TTL_SECONDS"] = 0
    again = client.post(URL, json={"value": 1}, headers=headers)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert len(rows(app)) == 2
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 1


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("value", ["", "has space", "é", "x" * 256])
def test_a_malformed_idempotency_key_is_400(app, client, key, value):
    response = client.post(
        URL, json={"value": 1}, headers={**bearer(key), "Idempotency-Key": value}
    )
    assert response.status_code == 400 and "Idempotency-Key" in response.get_json()["message"]
    assert rows(app) == []


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_concurrent_retries_with_one_idempotency_key_insert_once(app, key):
    """Two copies of a request racing: one inserts, the other gets its response replayed."""
    records = [{"value": float(i)} for i in range(2000)]

    def send(barrier: threading.Barrier, headers: dict[str, str], responses: list[t.Any]) -> None:
        client = app.test_client()
        barrier.wait()
        responses.append(client.post(URL, json=records, headers=headers))

    for attempt in range(ATTEMPTS):
        barrier = threading.Barrier(2)
        headers = {**bearer(key), "Idempotency-Key": f"race-{attempt}"}
        responses: list[t.Any] = []
        threads = [
            threading.Thread(target=send, args=(barrier, headers, responses)) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.status_code for r in responses] == [201, 201]
        assert responses[0].get_json() == responses[1].get_json()
        assert sorted("Idempotent-Replayed" in r.headers for r in responses) == [False, True]
    assert len(rows(app)) == ATTEMPTS * 2000


@pytest.mark.backends("sqlite")
def test_a_genuine_database_error_stays_a_500_with_its_traceback(app, client, key, caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production, not re-raise to the test
    with app.app_context():
        Data.__table__.drop(db.engine)
    response = client.post(URL, json={"value": 1}, headers=bearer(key))
    assert response.status_code == 500 and "Retry-After" not in response.headers
    assert response.get_json()["error"] == "Internal Server Error"
    [logged] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.getMessage().startswith("Exception on /api/v1/data [POST]")
    assert logged.exc_info is not None and "no such table: data" in str(logged.exc_info[1])
    assert not [r for r in caplog.records if r.getMessage().startswith("database unavailable")]


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_an_accepted_request_is_one_transaction_with_one_commit_and_no_update(app, client, key):
    headers = bearer(key)
    assert client.post(URL, json={"value": 0}, headers={**headers, "Idempotency-Key": "a"}).status_code == 201
    seen: list[str] = []
    with app.app_context():
        engine = db.engine
    listeners = {
        "begin": lambda conn: seen.append("BEGIN"),
        "commit": lambda conn: seen.append("COMMIT"),
        "rollback": lambda conn: seen.append("ROLLBACK"),
        "before_cursor_execute": lambda conn, cursor, statement, *args: seen.append(statement.split()[0].upper()),
    }
    for name, listener in listeners.items():
        sa.event.listen(engine, name, listener)
    try:
        records = [{"value": float(i)} for i in range(10)]
        response = client.post(URL, json=records, headers={**headers, "Idempotency-Key": "b"})
    finally:
        for name, listener in listeners.items():
            sa.event.remove(engine, name, listener)
    assert response.status_code == 201
    # the key, the idempotency lookup, the 10 rows in one statement, the remembered response;
    # last_used_at was written a moment ago and the purge ran with the first request
    statements = [s for s in seen if s not in ("BEGIN", "COMMIT", "ROLLBACK")]
    assert statements in (["SELECT", "SELECT", "INSERT", "INSERT"], ["SELECT", "SELECT", "SELECT", "INSERT", "INSERT"])
    assert seen.count("COMMIT") == 1 and "ROLLBACK" not in seen and seen.count("BEGIN") <= 1
    assert len(rows(app)) == 11


@pytest.mark.backends("sqlite", "postgresql")
def test_a_large_batch_is_remembered_in_a_few_bytes_and_replayed_in_full(app, client, key):
    headers = {**bearer(key), "Idempotency-Key": "big"}
    records = [{"value": float(i)} for i in range(5000)]
    first = client.post(URL, json=records, headers=headers)
    assert first.status_code == 201
    with app.app_context():
        [stored] = db.session.scalars(sa.select(IdempotencyRecord.response)).all()
    assert len(json.dumps(stored)) < 100, stored
    replay = client.post(URL, json=records, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json() and len(replay.get_json()["ids"]) == 5000


@pytest.mark.backends("sqlite", "postgresql")
def test_expired_idempotency_records_are_purged_in_bounded_batches_not_on_every_request(app, client, key):
    app.config["API_IDEMPOTENCY_PURGE_BATCH"] = 1000
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    with app.app_context():
        key_id = db.session.scalar(sa.select(ApiKey.id))
        db.session.execute(
            sa.insert(IdempotencyRecord),
            [
                {"api_key_id": key_id, "key_digest": f"{i:064x}", "fingerprint": "0" * 64, "status_code": 201,
                 "response": {"count": 0, "id_runs": []}, "created_at": old}
                for i in range(2500)
            ],
        )
        db.session.commit()

    def expired() -> int:
        with app.app_context():
            query = sa.select(sa.func.count()).select_from(IdempotencyRecord)
            return db.session.scalar(query.where(IdempotencyRecord.created_at < old + dt.timedelta(days=1)))

    def send(n: int) -> None:
        response = client.post(URL, json={"value": n}, headers={**bearer(key), "Idempotency-Key": f"k{n}"})
        assert response.status_code == 201

    send(1)
    assert expired() == 1500  # one bounded batch
    send(2)
    assert expired() == 1500  # not on every request
    time.sleep(1.1)  # a backlog is taken a second later, not after the whole interval
    send(3)
    assert expired() == 500
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 503


@pytest.mark.backends("sqlite")
def test_the_purge_of_expired_records_is_served_by_an_index(app):
    with app.app_context(), db.engine.connect() as conn:
        table = IdempotencyRecord.__table__
        purge = (
            sa.select(table.c.id).where(table.c.created_at < dt.datetime.now(dt.timezone.utc))
            .order_by(table.c.created_at).limit(1000)
        )
        compiled = purge.compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    assert re.search(r"USING (COVERING )?INDEX ix_idempotency_keys_created_at", plan), plan
