"""What users did: page views, signups, purchases..."""

from __future__ import annotations

import datetime as dt
import decimal
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Model
from .types import UTCDateTime, utcnow

if t.TYPE_CHECKING:
    from .users import User

#: The kinds of event the app records (stored as short text, as most apps do).
EVENT_KINDS = (
    "page_view",
    "search",
    "signup",
    "login",
    "logout",
    "add_to_cart",
    "purchase",
    "refund",
    "share",
    "support_ticket",
)


class Event(Model):
    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_user_occurred", "user_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Money, exact: only purchases and refunds carry an amount.
    amount: Mapped[decimal.Decimal | None] = mapped_column(sa.Numeric(10, 2))
    #: How long the action took; NULL when the client did not report it.
    duration_ms: Mapped[int | None]
    score: Mapped[float | None]
    is_mobile: Mapped[bool] = mapped_column(default=False)
    referrer: Mapped[str | None] = mapped_column(sa.String(255))

    user: Mapped[User] = relationship(back_populates="events")

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.kind} user={self.user_id}>"
