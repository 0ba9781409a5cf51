"""Property-based tests of POST /api/v1/data: random headers, bodies, content types, sizes.

Whatever arrives, the endpoint answers below 500, inserts rows only when it answers 201
(and exactly the rows whose ids it returns, holding the values that were sent), and a
well-formed request from a valid key is accepted.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import itertools
import json
import typing as t

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from my_app import api_keys
from my_app.db import db
from my_app.models import Data

URL = "/api/v1/data"
LIMIT = 2048  # a small MAX_CONTENT_LENGTH, so that sizes around it are cheap to generate
VALID_AUTH = ("valid", "valid-lowercase-scheme")
JSON_TYPES = ("application/json", "application/json; charset=utf-8", "application/readings+json")
FRESH = "<fresh>"
EXAMPLES = {"sqlite": 300, "postgresql": 150, "mysql": 120}

header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
)
finite_numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63)
any_numbers = st.floats() | st.integers(-(10**30), 10**30)
aware_timestamps = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes))),
    st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.integers(-23 * 60, 23 * 60),
).map(dt.datetime.isoformat)
json_scalars = st.none() | st.booleans() | any_numbers | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
valid_records = st.fixed_dictionaries(
    {"value": finite_numbers},
    optional={
        "source": st.none() | st.text(st.characters(exclude_characters="\x00"), max_size=120),
        "created_at": st.none() | aware_timestamps,
    },
)
wild_records = st.fixed_dictionaries(
    {},
    optional={
        "value": any_numbers | json_values,
        "source": st.text(max_size=130) | json_values,
        "created_at": aware_timestamps
        | st.text(max_size=30)
        | st.datetimes().map(dt.datetime.isoformat)
        | json_values,
        "id": json_scalars,
    },
)
valid_payloads = valid_records | st.lists(valid_records, min_size=1, max_size=8)
wild_payloads = (
    wild_records | st.lists(valid_records | wild_records | json_values, max_size=6) | json_values
)


@dataclasses.dataclass
class Request:
    method: str
    auth: str
    content_type: str | None
    headers: dict[str, str]
    body: bytes
    payload: t.Any  # what the body encodes, when it is JSON
    well_formed: bool  # method, key, content type, headers and body all as the docs say


@st.composite
def requests(draw: st.DrawFn) -> Request:
    if draw(st.integers(0, 2)) == 0:  # one in three: a request a correct client would send
        payload = draw(valid_payloads)
        body = json.dumps(payload, indent=draw(st.none() | st.integers(0, 2))).encode()
        # a correct client sends a fresh key per request; the test fills in a unique one
        headers = {"Idempotency-Key": FRESH} if draw(st.booleans()) else {}
        return Request(
            "POST",
            draw(st.sampled_from(VALID_AUTH)),
            draw(st.sampled_from(JSON_TYPES)),
            headers,
            body,
            payload,
            True,
        )

    # weighted so that most requests get past the early checks and reach the body's
    method = draw(st.sampled_from(["POST"] * 12 + ["GET", "PUT", "DELETE", "PATCH"]))
    auth_kind = draw(
        st.sampled_from(
            ["valid"] * 14
            + ["revoked", "wrong-secret", "unknown", "missing", "garbage", "no-scheme", "basic"]
        )
    )
    content_type = draw(
        st.sampled_from(
            [
                *JSON_TYPES * 4,
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "",
                None,
                "application/jsonx",
            ]
        )
        | header_text
    )
    headers: dict[str, str] = {}
    if draw(st.integers(0, 4)) == 0:
        headers = draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "Accept",
                        "Content-Encoding",
                        "X-Forwarded-For",
                        "Transfer-Encoding",
                        "X-Api-Key",
                    ]
                ),
                header_text,
                max_size=2,
            )
        )
    idempotency_key = draw(
        st.none() | st.none() | st.sampled_from(["k1", "k2", "k3"]) | header_text
    )
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    payload = draw(valid_payloads | wild_payloads)
    encoding = draw(st.sampled_from(["json", "json-unicode", "bytes"]))
    if encoding == "bytes":
        body = draw(st.binary(max_size=200))
    else:  # NaN and Infinity come out as JSON's non-standard tokens, lone surrogates as bad UTF-8
        text = json.dumps(payload, ensure_ascii=encoding == "json", allow_nan=True)
        body = text.encode("utf-8", errors="surrogatepass")
    body += b" " * draw(
        st.sampled_from([0, 0, 0, 1, LIMIT - len(body), LIMIT - len(body) + 1, LIMIT * 2])
    )
    return Request(method, auth_kind, content_type, headers, body, payload, False)


@pytest.fixture
def keys(app: t.Any) -> dict[str, str]:
    with app.app_context():
        valid = api_keys.create_api_key("cron").key
        revoked = api_keys.create_api_key("old").key
        api_keys.revoke_api_key("old")
    prefix = valid.split(".")[0]
    return {
        "valid": f"Bearer {valid}",
        "valid-lowercase-scheme": f"bearer {valid}",
        "revoked": f"Bearer {revoked}",
        "wrong-secret": f"Bearer {prefix}.{'A' * 43}",
        "unknown": f"Bearer {api_keys.generate_key()[0]}",
        "garbage": "Bearer \u00e9\u00e9 " + valid,
        "no-scheme": valid,
        "basic": "Basic Y3Jvbjpzb21ldGhpbmc=",
    }


def row_count(app: t.Any) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Data))


def rows_by_id(app: t.Any, ids: list[int]) -> dict[int, tuple[float, str | None, dt.datetime]]:
    with app.app_context():
        result = db.session.execute(
            sa.select(Data.id, Data.value, Data.source, Data.created_at).where(Data.id.in_(ids))
        )
        return {row.id: (row.value, row.source, row.created_at) for row in result}


@pytest.mark.backends("sqlite", "postgresql", "mysql")
def test_random_requests_never_500_and_rows_match_201_responses(app, keys, backend):
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    client = app.test_client()
    returned_ids: set[int] = set()
    first_response: dict[str, t.Any] = {}  # Idempotency-Key -> body of its first 201
    fresh_keys = itertools.count()
    statuses: collections.Counter[int | str] = collections.Counter()

    @settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(request=requests())
    @example(
        request=Request("POST", "valid", JSON_TYPES[0], {}, b'{"value": 1}', {"value": 1}, True)
    )
    @example(
        request=Request("POST", "valid", "text/plain", {}, b'{"value": 1}', {"value": 1}, False)
    )
    @example(
        request=Request("POST", "revoked", JSON_TYPES[0], {}, b'{"value": 1}', {"value": 1}, False)
    )
    @example(request=Request("GET", "valid", None, {}, b"", None, False))
    @example(
        request=Request(
            "POST", "valid", JSON_TYPES[0], {}, b'{"value": "1"}', {"value": "1"}, False
        )
    )
    @example(request=Request("POST", "valid", JSON_TYPES[0], {}, b"[" + b" " * LIMIT, None, False))
    # the same key twice with one body (a retry: replayed), and with two bodies (one 422)
    @example(
        request=Request(
            "POST",
            "valid",
            JSON_TYPES[0],
            {"Idempotency-Key": "k1"},
            b'{"value": 2}',
            {"value": 2},
            False,
        )
    )
    @example(
        request=Request(
            "POST",
            "valid",
            JSON_TYPES[0],
            {"Idempotency-Key": "k1"},
            b'{"value": 2}',
            {"value": 2},
            False,
        )
    )
    @example(
        request=Request(
            "POST",
            "valid",
            JSON_TYPES[0],
            {"Idempotency-Key": "k2"},
            b'{"value": 3}',
            {"value": 3},
            False,
        )
    )
    @example(
        request=Request(
            "POST",
            "valid",
            JSON_TYPES[0],
            {"Idempotency-Key": "k2"},
            b'{"value": 4}',
            {"value": 4},
            False,
        )
    )
    def check(request: Request) -> None:
        headers = dict(request.headers)
        if headers.get("Idempotency-Key") == FRESH:
            headers["Idempotency-Key"] = f"fresh-{next(fresh_keys)}"
        if request.auth != "missing":
            headers["Authorization"] = keys[request.auth]
        kwargs = {} if request.content_type is None else {"content_type": request.content_type}
        before = row_count(app)
        response = client.open(
            URL, method=request.method, data=request.body, headers=headers, **kwargs
        )
        after = row_count(app)

        statuses[response.status_code] += 1
        assert response.status_code < 500, response.get_data(as_text=True)
        assert response.is_json
        body = response.get_json()
        if request.method != "POST":
            assert response.status_code == 405
        elif request.auth not in VALID_AUTH:
            assert response.status_code == 401 and "WWW-Authenticate" in response.headers
        elif request.well_formed:
            expected = 201 if len(request.body) <= LIMIT else 413
            assert response.status_code == expected, body

        replayed = response.headers.get("Idempotent-Replayed") == "true"
        statuses["replayed"] += replayed
        if response.status_code == 201 and not replayed:
            ids = body["ids"]
            assert ids and len(ids) == body["count"] == after - before
            assert len(set(ids)) == len(ids) and not set(ids) & returned_ids
            returned_ids.update(ids)
            inserted = rows_by_id(app, ids)
            records = request.payload if isinstance(request.payload, list) else [request.payload]
            for record, row_id in zip(records, ids, strict=True):
                value, source, created_at = inserted[row_id]
                assert value == float(record["value"])
                assert source == record.get("source")
                if record.get("created_at") is not None:
                    assert created_at == dt.datetime.fromisoformat(record["created_at"])
            key = headers.get("Idempotency-Key")
            if key is not None:
                first_response[key] = body
        else:
            assert after == before, (response.status_code, body)
            if replayed:
                assert body == first_response[headers["Idempotency-Key"]]
            else:
                assert set(body) >= {"error", "message"}
        # every returned id is a row (checked as it came), and there are no other rows
        assert after == len(returned_ids)

    check()
    assert {201, 400, 401, 405, 413, 415, 422, "replayed"} <= set(statuses), statuses
