"""People who signed up."""

from __future__ import annotations

import datetime as dt
import enum
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Model
from .types import UTCDateTime, utcnow

if t.TYPE_CHECKING:
    from .events import Event


class Plan(enum.Enum):
    """The subscription plan a user is on."""

    free = "free"
    pro = "pro"
    team = "team"
    enterprise = "enterprise"


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    plan: Mapped[Plan] = mapped_column(sa.Enum(Plan, name="plan"), default=Plan.free)
    signed_up_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    birth_date: Mapped[dt.date | None]
    referrer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    bio: Mapped[str | None] = mapped_column(sa.Text)

    events: Mapped[list[Event]] = relationship(back_populates="user", lazy="dynamic")
    referrer: Mapped[User | None] = relationship(remote_side=[id])

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email!r}>"
