"""Remembered results of ingest requests that carried an ``Idempotency-Key`` header.

A cron job that times out and retries sends the same request again; the stored result lets
the endpoint answer the retry with the original response instead of inserting twice.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Model
from .types import UTCDateTime, utcnow


class IdempotencyRecord(Model):
    __tablename__ = "idempotency_keys"
    # Keys are per API key: two clients choosing the same key do not collide.
    __table_args__ = (sa.UniqueConstraint("api_key_id", "key_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(sa.ForeignKey("api_keys.id", ondelete="CASCADE"))
    #: SHA-256 of the client's key: fixed length, and compared byte for byte even where the
    #: column collation (MariaDB's) would ignore case or trailing spaces.
    key_digest: Mapped[str] = mapped_column(sa.String(64))
    #: SHA-256 of the validated request, to tell a retry from a different request reusing a key.
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    #: The response, compact: ``{"count": n, "id_runs": [[first, last], ...]}``, so a batch of
    #: consecutive ids is a few bytes however large it was (see my_app/idempotency.py).
    response: Mapped[dict[str, t.Any]] = mapped_column(sa.JSON)
    #: Indexed: the purge of expired keys finds them through it, however many are stored.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<IdempotencyRecord {self.id} api_key={self.api_key_id} status={self.status_code}>"
