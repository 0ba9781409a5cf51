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
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets

import sqlalchemy as sa

from .db import db
from .models import ApiKey
from .models.types import utcnow

#: Marks a string as one of this app's keys (for people and for secret scanners).
KEY_TAG = "myapp_"
_PREFIX_BYTES = 6  # token_urlsafe(6) is 8 characters
_SECRET_BYTES = 32  # token_urlsafe(32) is 43 characters: 256 random bits
_KEY_RE = re.compile(r"\A(?P<prefix>myapp_[A-Za-z0-9_-]{8})\.[A-Za-z0-9_-]{43}\Z")
_BEARER_RE = re.compile(r"\A[ \t]*bearer[ \t]+(?P<token>\S+)[ \t]*\Z", re.IGNORECASE)
#: Compared against when no key has the presented prefix, so that case does the same work.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()

MAX_NAME_LENGTH = 120


class ApiKeyError(Exception):
    """A key cannot be created or revoked as asked; the message says why and what to do."""


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


def authenticate(authorization: str | None) -> ApiKey | None:
    """The active key an ``Authorization`` header carries, or ``None`` for any failure.

    On success the key's ``last_used_at`` is set (in the current session; the caller commits).
    """
    token = bearer_token(authorization)
    match = _KEY_RE.match(token) if token is not None else None
    if token is None or match is None:
        return None
    record = db.session.scalar(sa.select(ApiKey).where(ApiKey.prefix == match["prefix"]))
    matched = keys_match(token, record.key_hash if record is not None else _DUMMY_HASH)
    if record is None or not matched or record.revoked_at is not None:
        return None
    record.last_used_at = utcnow()
    return record


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
    name = name.strip()
    if not name:
        raise ApiKeyError("An API key needs a name, e.g. the job that uses it: 'nightly-import'.")
    if len(name) > MAX_NAME_LENGTH:
        raise ApiKeyError(
            f"API key names are at most {MAX_NAME_LENGTH} characters; got {len(name)}."
        )
    if not name.isprintable():
        raise ApiKeyError("API key names must be printable text (no control characters).")
    return name
