"""API keys for machine clients (cron jobs), stored only as hashes."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Model
from .types import UTCDateTime, exact_string, utcnow


class ApiKey(Model):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Compared exactly on every backend: 'cron' and 'Cron' are two names (see api_keys.py).
    name: Mapped[str] = mapped_column(exact_string(120), unique=True)
    #: Public, non-secret part of the key, used to find the row without scanning hashes.
    prefix: Mapped[str] = mapped_column(exact_string(16), unique=True)
    #: SHA-256 of the whole key; the plaintext key is never stored.
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ApiKey {self.name!r}{'' if self.active else ' revoked'}>"
