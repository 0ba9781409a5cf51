"""API keys for machine clients: generation, hashing and checking, apart from the views.

A key looks like ``myapp_Ab3dE9xQ.<43 random characters>``. The part before the dot is the
*prefix*: random, not secret, unique, stored in clear so that a request finds its key's row
with one indexed lookup and the admin page can tell keys apart. The whole key is stored only
as its SHA-256 digest. A slow password hash (bcrypt, scrypt) buys nothing here: the keys carry
256 random bits, so there is nothing to brute-force, and a fast digest keeps every request cheap.

The presented key is hashed and the digests are compared with :func:`hmac.compare_digest`, so
the comparison takes the same time however many leading characters match. An unknown prefix
is still hashed and compared against a dummy digest, and every way of failing (no header, a
malformed header, an unknown, wrong or revoked key) ends in the same ``None``: callers answer
all of them with one message, so responses are no oracle.

Checking a key only reads. Its ``last_used_at`` is bookkeeping, written by :func:`record_use`
at most once per interval, in a transaction of its own after the request's.

Names are compared exactly on every backend: ``cron`` and ``Cron`` are two keys, and ``é``
written as one code point or as ``e`` plus an accent is the same name (names are stored in
Unicode NFC, without surrounding spaces). MariaDB's case- and accent-insensitive default
collation is replaced by ``utf8mb4_bin`` on these columns (:func:`my_app.models.types.exact_string`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
import typing as t
import unicodedata

import sqlalchemy as sa

from .db import db
from .models import ApiKey
from .models.types import UTCDateTime, utcnow

#: Marks a string as one of this app's keys (for people and for secret scanners).
KEY_TAG = "myapp_"
_PREFIX_BYTES = 6  # token_urlsafe(6) is 8 characters
_SECRET_BYTES = 32  # token_urlsafe(32) is 43 characters: 256 random bits
_KEY_RE = re.compile(r"\A(?P<prefix>myapp_[A-Za-z0-9_-]{8})\.[A-Za-z0-9_-]{43}\Z")
_BEARER_RE = re.compile(r"\A[ \t]*bearer[ \t]+(?P<token>\S+)[ \t]*\Z", re.IGNORECASE)
#: Compared against when no key has the presented prefix, so that case does the same work.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()

MAX_NAME_LENGTH = 120

_keys = t.cast(sa.Table, ApiKey.__table__)
# Built once: building a statement costs more than running it from SQLAlchemy's compiled cache.
_BY_PREFIX = sa.select(_keys.c.id, _keys.c.name, _keys.c.key_hash, _keys.c.revoked_at, _keys.c.last_used_at).where(
    _keys.c.prefix == sa.bindparam("prefix")
)
_RECORD_USE = (
    sa.update(_keys)
    .where(
        _keys.c.id == sa.bindparam("key_id"),
        sa.or_(_keys.c.last_used_at.is_(None), _keys.c.last_used_at < sa.bindparam("since", type_=UTCDateTime)),
    )
    .values(last_used_at=sa.bindparam("now", type_=UTCDateTime))
)


class ApiKeyError(Exception):
    """A key cannot be created or revoked as asked; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class AuthenticatedKey:
    """The active key a request presented: what the endpoint needs, no ORM object."""

    id: int
    name: str
    last_used_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class NewApiKey:
    """A key just created: ``key`` is the only copy of the plaintext; show it once."""

    record: ApiKey
    key: str


def hash_key(key: str) -> str:
    """The hex SHA-256 digest stored in place of ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def keys_match(presented: str, stored_hash: str) -> bool:
    """Whether ``presented`` hashes to ``stored_hash``, compared in constant time.

    Both sides are 64-character hex digests, so :func:`hmac.compare_digest` sees equal
    lengths and ASCII only whatever the client sent.
    """
    return hmac.compare_digest(hash_key(presented), stored_hash)


def generate_key() -> tuple[str, str]:
    """A fresh random key and its prefix."""
    prefix = KEY_TAG + secrets.token_urlsafe(_PREFIX_BYTES)
    return f"{prefix}.{secrets.token_urlsafe(_SECRET_BYTES)}", prefix


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization:
        return None
    match = _BEARER_RE.match(authorization)
    return match["token"] if match else None


def presented_key(authorization: str | None) -> str | None:
    """The key an ``Authorization`` header carries if it has the form of one, else ``None``.

    A cheap check without the database: anything else fails :func:`authenticate` anyway.
    """
    token = bearer_token(authorization)
    return token if token is not None and _KEY_RE.match(token) else None


def authenticate(authorization: str | None, *, connection: sa.Connection | None = None) -> AuthenticatedKey | None:
    """The active key an ``Authorization`` header carries, or ``None`` for any failure.

    One indexed read, on ``connection`` (the request's transaction) or else the session's;
    nothing is written.
    """
    token = presented_key(authorization)
    if token is None:
        return None
    conn = connection if connection is not None else db.session.connection()
    row = conn.execute(_BY_PREFIX, {"prefix": token.partition(".")[0]}).first()
    matched = keys_match(token, row.key_hash if row is not None else _DUMMY_HASH)
    if row is None or not matched or row.revoked_at is not None:
        return None
    return AuthenticatedKey(id=row.id, name=row.name, last_used_at=row.last_used_at)


def record_use(key: AuthenticatedKey, *, interval: dt.timedelta) -> bool:
    """Set ``key``'s ``last_used_at`` to now unless it was set less than ``interval`` ago.

    Its own short transaction on a connection of its own, so call it after the request's
    transaction is over. The condition is also in the UPDATE, so server processes that race
    write once. Returns whether this call wrote.
    """
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < interval:
        return False
    with db.engine.begin() as conn:
        result = conn.execute(_RECORD_USE, {"key_id": key.id, "since": now - interval, "now": now})
    return bool(result.rowcount)


def normalize_name(name: str) -> str:
    """The form names are stored and looked up in: NFC, surrounding whitespace stripped."""
    return unicodedata.normalize("NFC", name).strip()


def create_api_key(name: str) -> NewApiKey:
    """Create and commit a key called ``name``; the plaintext is returned, never stored."""
    name = _check_name(name)
    existing = db.session.scalar(sa.select(ApiKey).where(ApiKey.name == name))
    if existing is not None:
        # Names are never reused, so a name in old logs always means one key.
        state = "exists" if existing.revoked_at is None else "existed (now revoked)"
        raise ApiKeyError(f"An API key named {name!r} already {state}. Pick another name.")
    while True:
        key, prefix = generate_key()
        taken = db.session.scalar(sa.select(ApiKey.id).where(ApiKey.prefix == prefix))
        if taken is None:  # 48 random bits: a clash is astronomically rare, but cheap to rule out
            break
    record = ApiKey(name=name, prefix=prefix, key_hash=hash_key(key))
    db.session.add(record)
    db.session.commit()
    return NewApiKey(record=record, key=key)


def revoke_api_key(name: str) -> ApiKey:
    """Revoke the key called ``name`` and commit; requests with it get 401 from now on."""
    name = normalize_name(name)
    record = db.session.scalar(sa.select(ApiKey).where(ApiKey.name == name))
    if record is None:
        raise ApiKeyError(
            f"No API key named {name!r}. See the names with: flask --app my_app api-key list"
        )
    if record.revoked_at is not None:
        raise ApiKeyError(
            f"The API key {name!r} was already revoked on {record.revoked_at:%Y-%m-%d %H:%M} UTC."
        )
    record.revoked_at = utcnow()
    db.session.commit()
    return record


def list_api_keys() -> list[ApiKey]:
    """Every key, oldest first."""
    return list(db.session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def _check_name(name: str) -> str:
    name = normalize_name(name)
    if not name:
        raise ApiKeyError("An API key needs a name, e.g. the job that uses it: 'nightly-import'.")
    if len(name) > MAX_NAME_LENGTH:
        raise ApiKeyError(
            f"API key names are at most {MAX_NAME_LENGTH} characters; got {len(name)}."
        )
    if not name.isprintable():
        raise ApiKeyError("API key names must be printable text (no control characters).")
    return name
