"""Column types shared by the models."""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa


def utcnow() -> dt.datetime:
    """Timezone-aware "now" in UTC: the only kind of timestamp the app stores."""
    return dt.datetime.now(dt.timezone.utc)


def exact_string(length: int) -> sa.types.TypeEngine[str]:
    """``VARCHAR(length)`` whose comparisons are exact (code point by code point) everywhere.

    SQLite and PostgreSQL compare text exactly already. MariaDB's default utf8mb4 collations
    ignore case and accents (``'Cron' = 'cron'``, ``'é' = 'e'``), so there the column is
    ``utf8mb4_bin``. Callers strip trailing spaces, which MariaDB would pad away.
    """
    from sqlalchemy.dialects import mysql

    binary = mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin")
    return sa.String(length).with_variant(binary, "mysql", "mariadb")


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp that comes back aware on every backend.

    PostgreSQL keeps the zone (``timestamptz``); SQLite and MariaDB have no zone-aware type, so
    values are converted to UTC before they are stored and tagged UTC when they are read.
    Naive datetimes are refused rather than guessed at.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[t.Any]:
        if dialect.name in ("mysql", "mariadb"):
            # Without fsp, MariaDB's DATETIME silently drops the microseconds.
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime (UTC)")
        value = value.astimezone(dt.timezone.utc)
        if dialect.name != "postgresql":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)
