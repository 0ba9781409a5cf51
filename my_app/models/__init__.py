"""The app's models, one domain concept per module."""

from __future__ import annotations

from .api_keys import ApiKey
from .data import Data
from .events import EVENT_KINDS, Event
from .idempotency import IdempotencyRecord
from .summaries import DailyEventSummary
from .users import Plan, User

__all__ = ["ApiKey", "DailyEventSummary", "Data", "EVENT_KINDS", "Event", "IdempotencyRecord", "Plan", "User"]
