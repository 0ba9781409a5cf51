"""Measurements pushed in by scheduled jobs and the ingest endpoint."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Model
from .types import UTCDateTime, utcnow


class Data(Model):
    __tablename__ = "data"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[float]
    source: Mapped[str | None] = mapped_column(sa.String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<Data {self.id} value={self.value}>"
