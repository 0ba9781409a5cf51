"""Aggregates computed by scheduled jobs (see ``my_app/jobs``), kept for fast dashboards."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Model
from .types import UTCDateTime, utcnow


class DailyEventSummary(Model):
    """One row per UTC day and event kind, written by ``my_app.jobs.daily_summary``.

    The job replaces a day's rows as a whole, so re-running it for the same day gives the same
    rows; the unique constraint makes a half-written or duplicated day impossible.
    """

    __tablename__ = "daily_event_summaries"
    __table_args__ = (sa.UniqueConstraint("day", "kind", name="uq_daily_event_summaries_day_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    events: Mapped[int]
    #: Distinct users with at least one event of this kind that day.
    users: Mapped[int]
    mobile_events: Mapped[int]
    #: Sum of the events' amounts (purchases, refunds); NULL when none carried an amount.
    amount: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(14, 2))
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<DailyEventSummary {self.day} {self.kind} events={self.events}>"
