"""Summarise one UTC day of events per kind into DailyEventSummary (default: yesterday).

Idempotent: the day's summary rows are replaced in the same transaction that computes them, so
running it twice for a day (a cron retry, a backfill) leaves exactly one set of rows, and a
failure leaves the previous rows untouched.

    python -m my_app.jobs.daily_summary                   # yesterday
    python -m my_app.jobs.daily_summary --day 2026-10-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import typing as t

import sqlalchemy as sa

import analysis
from analysis.jobs import run

from ..models import DailyEventSummary, Event

if t.TYPE_CHECKING:
    from analysis import Workbench

logger = logging.getLogger("my_app.jobs.daily_summary")  # not __main__ under python -m


@analysis.job("my_app:create_app")
def daily_summary(wb: Workbench, day: dt.date) -> int:
    """Replace ``day``'s DailyEventSummary rows; return how many kinds had events."""
    import pandas as pd

    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=1)
    per_kind = (
        sa.select(
            Event.kind,
            sa.func.count().label("events"),
            sa.func.count(sa.distinct(Event.user_id)).label("users"),
            sa.func.sum(sa.case((Event.is_mobile, 1), else_=0)).label("mobile_events"),
            sa.func.sum(Event.amount).label("amount"),
        )
        .where(Event.occurred_at >= start, Event.occurred_at < end)
        .group_by(Event.kind)
        .order_by(Event.kind)
    )
    rows = wb.session.execute(per_kind).all()
    summary = pd.DataFrame(rows, columns=["kind", "events", "users", "mobile_events", "amount"])
    summary.insert(0, "day", day)

    replaced = t.cast(
        "sa.CursorResult[t.Any]",
        wb.session.execute(sa.delete(DailyEventSummary).where(DailyEventSummary.day == day)),
    )
    wb.insert_frame(DailyEventSummary, summary)
    logger.info(
        "%s: %d events of %d kinds summarised (%d old rows replaced)",
        day, int(summary["events"].sum()), len(summary), replaced.rowcount,
    )
    return len(summary)


def yesterday() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog or "python -m my_app.jobs.daily_summary",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--day", type=dt.date.fromisoformat, default=None,
        help="the UTC day to summarise, YYYY-MM-DD (default: yesterday)",
    )
    args = parser.parse_args(argv)
    return run(daily_summary, args.day or yesterday())


if __name__ == "__main__":
    sys.exit(main())
