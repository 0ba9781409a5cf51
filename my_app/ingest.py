"""``POST /api/v1/data``: measurements pushed by cron jobs, authenticated with an API key.

The endpoint is written for clients that run unattended and retry:

- every bad input gets a 4xx with a JSON body saying what to fix, never a 500;
- a batch is inserted in one transaction, all or nothing;
- an ``Idempotency-Key`` header makes a retried request return the original response
  instead of inserting the rows a second time.

Checks run in this order, so a client without a valid key learns nothing about the body:
authentication (401), ``Idempotency-Key`` syntax (400), content type and encoding (415), size
(413), JSON syntax and schema (400), idempotency replay or conflict (201 replayed / 422), insert
(201).

Each record is an object ``{"value": <number>, "source": <string|null>, "created_at":
<ISO 8601 timestamp with a zone|null>}``; only ``value`` is required. The body is one record or a
list of them; the response is ``{"ids": [...], "count": n}`` in the order of the records.

An accepted request is one transaction with one commit: the key check (a read), the
idempotency lookup (a read), the rows (one ``INSERT ... RETURNING`` executemany through
SQLAlchemy Core) and the remembered response. The body is read before that transaction
starts, so no client I/O happens inside it. The key's ``last_used_at`` and the purge of expired
idempotency records are bookkeeping, done after the response is made, in their own short
transactions, at most once a minute; their failure is logged and never fails the request.
A database that is momentarily away answers 503 with ``Retry-After`` (:mod:`my_app.errors`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import typing as t

import sqlalchemy as sa
from flask import Blueprint, Response, after_this_request, current_app, jsonify, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import (
    BadRequest,
    RequestEntityTooLarge,
    Unauthorized,
    UnprocessableEntity,
    UnsupportedMediaType,
)

from . import api_keys, idempotency
from .db import db, driver_message
from .models import Data
from .models.types import utcnow

bp = Blueprint("ingest", __name__)

FIELDS = ("value", "source", "created_at")
_data = t.cast(sa.Table, Data.__table__)
SOURCE_MAX_LENGTH = t.cast(sa.String, _data.c.source.type).length or 120
# Built once: building a statement costs more than running it from SQLAlchemy's compiled cache.
_INSERT_DATA = sa.insert(_data).returning(_data.c.id, sort_by_parameter_order=True)
# SQLAlchemy cannot promise SQLite's RETURNING order, so with sort_by_parameter_order it sends
# one INSERT per row. SQLite gives an INTEGER PRIMARY KEY max(rowid) + 1, so ids rise in the
# order rows are inserted, and the writer holds the database lock: multi-row INSERTs whose ids,
# sorted, are the records' ids in order.
_INSERT_DATA_SQLITE = sa.insert(_data).returning(_data.c.id)
_IDEMPOTENCY_KEY_RE = re.compile(r"\A[\x21-\x7e]{1,255}\Z")
_UNAUTHORIZED_MESSAGE = (
    "A valid API key is required: send 'Authorization: Bearer <key>'."
    " Create a key with: flask --app my_app api-key create NAME"
)


class InvalidRecord(BadRequest):
    """A record of the body does not fit the schema; ``field`` says where, e.g. ``[3].value``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@bp.errorhandler(InvalidRecord)
def invalid_record(error: InvalidRecord) -> tuple[Response, int]:
    return jsonify(error=error.name, message=error.description, field=error.field), 400


@dataclasses.dataclass(frozen=True)
class Record:
    """One validated record, in the types the ``data`` table takes."""

    value: float
    source: str | None
    created_at: dt.datetime | None


@bp.post("/data")
def ingest_data() -> tuple[Response, int]:
    """Insert one record or a list of records into the ``data`` table."""
    authorization = request.headers.get("Authorization")
    if api_keys.presented_key(authorization) is None:
        _refuse()
    body = _read_body()  # before the transaction: a slow client holds no database snapshot
    # A connection of the request's own, not the ORM session: the endpoint is a few Core
    # statements, and leaving the block without commit() rolls back whatever happened.
    with db.engine.connect() as conn:
        api_key = api_keys.authenticate(authorization, connection=conn)
        if api_key is None:
            _refuse()
        after_this_request(_bookkeeping(api_key))
        idempotency_key = _idempotency_key()
        records = parse_records(_json_body(body))
        if idempotency_key is None:
            response = _insert(conn, records)
        else:
            response = _insert_once(conn, records, api_key.id, idempotency_key)
    if response.status_code == 201 and "Idempotent-Replayed" not in response.headers:
        current_app.logger.info(
            "ingest: inserted %d row(s) for API key %r", len(records), api_key.name
        )
    return response, response.status_code


def _refuse() -> t.NoReturn:
    current_app.logger.info(
        "ingest: refused a request from %s without a valid API key", request.remote_addr
    )
    raise Unauthorized(_UNAUTHORIZED_MESSAGE, www_authenticate=_challenge())


def _bookkeeping(api_key: api_keys.AuthenticatedKey) -> t.Callable[[Response], Response]:
    """After the response is made: the key's ``last_used_at`` when due, and the purge of
    expired idempotency records when due. Failures are logged, never the request's."""

    def bookkeeping(response: Response) -> Response:
        app = current_app
        config = app.config
        try:
            api_keys.record_use(
                api_key, interval=dt.timedelta(seconds=float(config["API_KEY_LAST_USED_INTERVAL_SECONDS"]))
            )
        except sa.exc.SQLAlchemyError as e:
            app.logger.warning(
                "ingest: could not record the use of API key %r (the request is not affected): %s",
                api_key.name,
                driver_message(e),
            )
        purge = t.cast(idempotency.Purge, app.extensions.setdefault("my_app.idempotency_purge", idempotency.Purge()))
        if purge.claim(float(config["API_IDEMPOTENCY_PURGE_INTERVAL_SECONDS"])):
            try:
                purge.run(
                    db.engine,
                    ttl=dt.timedelta(seconds=int(config["API_IDEMPOTENCY_TTL_SECONDS"])),
                    batch=int(config["API_IDEMPOTENCY_PURGE_BATCH"]),
                )
            except sa.exc.SQLAlchemyError as e:
                app.logger.warning(
                    "ingest: could not purge expired Idempotency-Keys (retried later): %s", driver_message(e)
                )
        return response

    return bookkeeping


def _challenge() -> WWWAuthenticate:
    return WWWAuthenticate("Bearer", {"realm": "my_app"})


def _idempotency_key() -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY_RE.match(value):
        raise BadRequest(
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters (no spaces);"
            " a random UUID per logical request is a good choice."
        )
    return value


def _json_body(body: bytes | RequestEntityTooLarge) -> t.Any:
    if not request.is_json:
        raise UnsupportedMediaType(
            f"Send the records as JSON with 'Content-Type: application/json'"
            f" (got {request.mimetype or 'no content type'!r})."
        )
    if request.content_encoding not in (None, "", "identity"):
        raise UnsupportedMediaType(
            f"Content-Encoding {request.content_encoding[:40]!r} is not supported;"
            " send the JSON body uncompressed."
        )
    if isinstance(body, RequestEntityTooLarge):
        raise body
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError as e:
        raise BadRequest("The body is not valid JSON: it is nested too deeply.") from e
    except json.JSONDecodeError as e:
        raise BadRequest(f"The body is not valid JSON: {e}.") from e
    except UnicodeDecodeError as e:
        raise BadRequest("The body is not valid JSON: it is not UTF-8 text.") from e
    except ValueError as e:  # NaN/Infinity (see _reject_constant), an integer of 4,300+ digits
        reason = str(e) if "JSON number" in str(e) else "a number has too many digits"
        raise BadRequest(f"The body is not valid JSON: {reason}.") from e


def _read_body() -> bytes | RequestEntityTooLarge:
    """The request body, or the 413 to answer (after the checks that come first) past
    ``MAX_CONTENT_LENGTH``.

    Werkzeug refuses a too-large ``Content-Length`` up front, but a streamed (chunked) body
    is only cut at the limit, silently; one more byte from the server's stream tells a body
    of exactly the limit from a longer one.
    """
    limit = request.max_content_length
    too_large = RequestEntityTooLarge(
        f"The body is larger than the limit of {limit or 0:,} bytes (MAX_CONTENT_LENGTH);"
        " send the records in smaller batches."
    )
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge as e:
        too_large.__cause__ = e
        return too_large
    if limit is not None and request.content_length is None and len(data) >= limit:
        if request.environ["wsgi.input"].read(1):
            return too_large
    return data


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def parse_records(payload: t.Any) -> list[Record]:
    """Validate a decoded JSON body: one record object or a non-empty list of them.

    Raises :class:`InvalidRecord` naming the first field that is wrong.
    """
    if isinstance(payload, dict):
        return [_parse_record(payload, "")]
    if isinstance(payload, list):
        if not payload:
            raise InvalidRecord("", "The body is an empty list: send at least one record.")
        return [_parse_record(item, f"[{i}]") for i, item in enumerate(payload)]
    raise InvalidRecord(
        "",
        f"The body must be a record object or a list of them, got {_json_type(payload)}."
        ' Example: {"value": 21.5, "source": "sensor-1"}',
    )


def _parse_record(item: t.Any, path: str) -> Record:
    where = f"record {path[1:-1]}: " if path else ""
    if not isinstance(item, dict):
        raise InvalidRecord(
            path, f"{where}expected an object with a 'value', got {_json_type(item)}."
        )
    for name in item:
        if name not in FIELDS:
            raise InvalidRecord(
                _field(path, name),
                f"{where}unknown field {name[:50]!r}; allowed fields are {', '.join(FIELDS)}.",
            )
    if "value" not in item:
        raise InvalidRecord(_field(path, "value"), f"{where}field 'value' is required.")
    return Record(
        value=_parse_value(item["value"], path, where),
        source=_parse_source(item.get("source"), path, where),
        created_at=_parse_created_at(item.get("created_at"), path, where),
    )


def _parse_value(raw: t.Any, path: str, where: str) -> float:
    field = _field(path, "value")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise InvalidRecord(field, f"{where}field 'value' must be a number, got {_json_type(raw)}.")
    try:
        value = float(raw)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise InvalidRecord(field, f"{where}field 'value' is out of range for a double.")
    return value


def _parse_source(raw: t.Any, path: str, where: str) -> str | None:
    field = _field(path, "source")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidRecord(
            field, f"{where}field 'source' must be a string or null, got {_json_type(raw)}."
        )
    if len(raw) > SOURCE_MAX_LENGTH:
        raise InvalidRecord(
            field,
            f"{where}field 'source' is {len(raw)} characters; the limit is {SOURCE_MAX_LENGTH}.",
        )
    if "\x00" in raw:
        raise InvalidRecord(field, f"{where}field 'source' must not contain NUL characters.")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as e:  # "\ud800" is valid JSON but not storable text
        raise InvalidRecord(field, f"{where}field 'source' contains an unpaired surrogate.") from e
    return raw


def _parse_created_at(raw: t.Any, path: str, where: str) -> dt.datetime | None:
    field = _field(path, "created_at")
    if raw is None:
        return None
    example = "e.g. '2024-05-01T12:00:00Z'"
    if not isinstance(raw, str) or len(raw) > 64:
        raise InvalidRecord(
            field, f"{where}field 'created_at' must be an ISO 8601 timestamp string, {example}."
        )
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError as e:
        raise InvalidRecord(
            field, f"{where}field 'created_at' is not an ISO 8601 timestamp, {example}."
        ) from e
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRecord(
            field, f"{where}field 'created_at' needs a time zone ('Z' or '+02:00'), {example}."
        )
    utc: dt.datetime | None
    try:
        utc = value.astimezone(dt.timezone.utc)
    except OverflowError as e:
        utc = None
        cause: Exception | None = e
    else:
        cause = None
    # MariaDB's DATETIME starts at year 1000; one range for every backend keeps data portable.
    if utc is None or utc.year < 1000:
        raise InvalidRecord(
            field, f"{where}field 'created_at' must be between 1000-01-01 and 9999-12-31 UTC."
        ) from cause
    return utc


def _field(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _json_type(value: t.Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def fingerprint(records: list[Record]) -> str:
    """SHA-256 of the validated records: equal for equal requests, however the JSON was spaced."""
    canonical = [
        [r.value, r.source, r.created_at.isoformat() if r.created_at else None] for r in records
    ]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode("utf-8")).hexdigest()


def _insert(conn: sa.Connection, records: list[Record]) -> Response:
    """Insert ``records`` and commit; the response lists their ids."""
    ids = _insert_rows(conn, records)
    conn.commit()
    response = jsonify(ids=ids, count=len(ids))
    response.status_code = 201
    return response


def _insert_rows(conn: sa.Connection, records: list[Record]) -> list[int]:
    now = utcnow()
    rows = [{"value": r.value, "source": r.source, "created_at": r.created_at or now} for r in records]
    if conn.dialect.name == "sqlite":
        return sorted(conn.scalars(_INSERT_DATA_SQLITE, rows))
    return list(conn.scalars(_INSERT_DATA, rows))


def _insert_once(conn: sa.Connection, records: list[Record], api_key_id: int, idempotency_key: str) -> Response:
    """Insert unless this key was seen before; a retry gets the remembered response.

    The rows and the remembered response are committed in one transaction, so either both
    exist or neither does. Two concurrent requests with one key race on the unique constraint
    of the remembered responses: the loser rolls back its rows and replays the winner's.
    """
    key_digest = idempotency.digest(idempotency_key)
    request_fingerprint = fingerprint(records)
    ttl = dt.timedelta(seconds=int(current_app.config["API_IDEMPOTENCY_TTL_SECONDS"]))
    remembered = idempotency.find(conn, api_key_id, key_digest)
    if remembered is not None:
        if not idempotency.is_expired(remembered, ttl):
            conn.rollback()
            return _replay(remembered, request_fingerprint)
        idempotency.forget(conn, remembered.id)  # expired, not purged yet
    try:
        ids = _insert_rows(conn, records)
        idempotency.remember(
            conn, api_key_id=api_key_id, key_digest=key_digest, fingerprint=request_fingerprint, ids=ids
        )
        conn.commit()
    except sa.exc.IntegrityError:
        conn.rollback()
        remembered = idempotency.find(conn, api_key_id, key_digest)
        conn.rollback()
        if remembered is None:
            raise
        current_app.logger.info("ingest: a concurrent request with this Idempotency-Key won")
        return _replay(remembered, request_fingerprint)
    response = jsonify(ids=ids, count=len(ids))
    response.status_code = 201
    return response


def _replay(remembered: idempotency.Remembered, request_fingerprint: str) -> Response:
    if remembered.fingerprint != request_fingerprint:
        raise UnprocessableEntity(
            "This Idempotency-Key was already used for a request with a different body."
            " Send a new key for a new request; reuse a key only to retry the same request."
        )
    response = jsonify(remembered.body)
    response.status_code = remembered.status_code
    response.headers["Idempotent-Replayed"] = "true"
    return response
