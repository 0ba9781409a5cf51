"""What the ingest endpoint remembers of requests sent with an ``Idempotency-Key``.

A record holds the SHA-256 of the client's key (per API key), a fingerprint of the request and
its response, compactly: ids come back as runs of consecutive numbers (``[[41, 9040]]`` for
9,000 rows), a few bytes whatever the batch size. Records older than
``API_IDEMPOTENCY_TTL_SECONDS`` are forgotten: a lookup ignores them at once, and
:class:`Purge` deletes them later, in bounded batches, at most once a minute per process, through
the index on ``created_at``, so the cost of a request does not grow with the records stored.

Everything here takes the connection (or engine) to use: the endpoint decides the transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
import time
import typing as t

import sqlalchemy as sa

from .models import IdempotencyRecord
from .models.types import utcnow

_records = t.cast(sa.Table, IdempotencyRecord.__table__)
# Built once: building a statement costs more than running it from SQLAlchemy's compiled cache.
_FIND = sa.select(
    _records.c.id, _records.c.fingerprint, _records.c.status_code, _records.c.response, _records.c.created_at
).where(_records.c.api_key_id == sa.bindparam("api_key_id"), _records.c.key_digest == sa.bindparam("key_digest"))
_FORGET = sa.delete(_records).where(_records.c.id == sa.bindparam("record_id"))
_REMEMBER = sa.insert(_records)


@dataclasses.dataclass(frozen=True)
class Remembered:
    """A stored response: its record id, the request's fingerprint, status and body."""

    id: int
    fingerprint: str
    status_code: int
    body: dict[str, t.Any]
    created_at: dt.datetime


def digest(idempotency_key: str) -> str:
    """What is stored for a client's key: fixed length, and compared byte for byte even where
    the column collation (MariaDB's) would ignore case or trailing spaces."""
    return hashlib.sha256(idempotency_key.encode("ascii")).hexdigest()


def find(conn: sa.Connection, api_key_id: int, key_digest: str) -> Remembered | None:
    """The remembered response for this key, expired or not (see :func:`is_expired`)."""
    row = conn.execute(_FIND, {"api_key_id": api_key_id, "key_digest": key_digest}).first()
    if row is None:
        return None
    return Remembered(row.id, row.fingerprint, row.status_code, expand(row.response), row.created_at)


def is_expired(remembered: Remembered, ttl: dt.timedelta) -> bool:
    return remembered.created_at < utcnow() - ttl


def forget(conn: sa.Connection, record_id: int) -> None:
    """Delete one (expired) record, in the caller's transaction."""
    conn.execute(_FORGET, {"record_id": record_id})


def remember(
    conn: sa.Connection, *, api_key_id: int, key_digest: str, fingerprint: str, ids: t.Sequence[int]
) -> None:
    """Store a 201 response listing ``ids``, in the caller's transaction.

    Raises :class:`sqlalchemy.exc.IntegrityError` when a concurrent request with the same key
    stored its response first (the unique constraint on ``(api_key_id, key_digest)``).
    """
    conn.execute(
        _REMEMBER,
        {
            "api_key_id": api_key_id,
            "key_digest": key_digest,
            "fingerprint": fingerprint,
            "status_code": 201,
            "response": compact(ids),
            "created_at": utcnow(),
        },
    )


def compact(ids: t.Sequence[int]) -> dict[str, t.Any]:
    """``{"count": n, "id_runs": [[first, last], ...]}``: runs of consecutive ids, in order."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return {"count": len(ids), "id_runs": runs}


def expand(stored: dict[str, t.Any]) -> dict[str, t.Any]:
    """The response body, ``{"ids": [...], "count": n}``, from what :func:`compact` stored.

    Records stored before responses were compacted hold the body itself, and are returned as
    they are.
    """
    if "id_runs" not in stored:
        return stored
    ids = [i for first, last in stored["id_runs"] for i in range(first, last + 1)]
    return {"ids": ids, "count": stored["count"]}


class Purge:
    """Deletes expired records in bounded batches, at most once per ``interval`` per process.

    A batch that comes back full leaves a backlog, so the next purge comes a second later
    rather than after the interval. Each purge is its own short transaction, apart from
    any request's: on MariaDB a range delete takes gap locks, which concurrent inserts of new
    keys would otherwise queue behind.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0  # time.monotonic() of the next purge

    def claim(self, interval: float) -> bool:
        """Whether this caller should purge now; if so, the next one waits ``interval`` s."""
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                return False
            self._next = now + interval
            return True

    def run(self, engine: sa.Engine, *, ttl: dt.timedelta, batch: int) -> int:
        """Delete up to ``batch`` expired records, oldest first; return how many went."""
        cutoff = utcnow() - ttl
        with engine.begin() as conn:
            ids = list(
                conn.scalars(
                    sa.select(_records.c.id)
                    .where(_records.c.created_at < cutoff)
                    .order_by(_records.c.created_at)
                    .limit(batch)
                )
            )
            if ids:
                conn.execute(sa.delete(_records).where(_records.c.id.in_(ids)))
        if len(ids) >= batch:
            with self._lock:  # a backlog: the next batch in a second, not a minute
                self._next = min(self._next, time.monotonic() + 1.0)
        return len(ids)
