"""Deactivate users with no events in the last N days (default 90) before a day (default today).

The usual version of "query users on a schedule" loads every user into memory, loops over them
with one query per user, commits row by row and leaves a transaction open when it crashes
halfway. This one is a single set-based UPDATE in one transaction: the database does the work
with the (user_id, occurred_at) index, only active users are touched, and running it again for
the same day changes nothing. ``--dry-run`` reports the count and writes nothing.

    python -m my_app.jobs.deactivate_idle_users --idle-days 90
    flask --app my_app run-job deactivate_idle_users --as-of 2026-11-01 --dry-run
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

from ..models import Event, User

if t.TYPE_CHECKING:
    from analysis import Workbench

logger = logging.getLogger("my_app.jobs.deactivate_idle_users")  # not __main__ under python -m


def idle_users(idle_days: int, as_of: dt.date) -> sa.ColumnElement[bool]:
    """Active users who signed up before the cutoff and have no event since it."""
    cutoff = dt.datetime.combine(as_of, dt.time(0), tzinfo=dt.timezone.utc) - dt.timedelta(days=idle_days)
    recent_event = sa.exists().where(Event.user_id == User.id, Event.occurred_at >= cutoff)
    return sa.and_(User.active.is_(True), User.signed_up_at < cutoff, ~recent_event)


@analysis.job("my_app:create_app")
def deactivate_idle_users(
    wb: Workbench, *, idle_days: int = 90, as_of: dt.date | None = None, dry_run: bool = False
) -> int:
    """Set ``active = False`` for idle users; return how many were (or would be) deactivated."""
    if idle_days < 1:
        raise ValueError(f"idle_days must be at least 1, not {idle_days}")
    as_of = as_of or dt.datetime.now(dt.timezone.utc).date()
    condition = idle_users(idle_days, as_of)
    if dry_run:
        count = wb.session.scalar(sa.select(sa.func.count()).select_from(User).where(condition))
        logger.info("dry run: %d users idle for %d days before %s; nothing changed", count, idle_days, as_of)
        return int(count or 0)
    result = t.cast(
        "sa.CursorResult[t.Any]",
        wb.session.execute(
            sa.update(User).where(condition).values(active=False),
            execution_options={"synchronize_session": False},
        ),
    )
    logger.info("%d users idle for %d days before %s deactivated", result.rowcount, idle_days, as_of)
    return int(result.rowcount)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog or "python -m my_app.jobs.deactivate_idle_users",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--idle-days", type=int, default=90, help="days without events (default: 90)")
    parser.add_argument(
        "--as-of", type=dt.date.fromisoformat, default=None,
        help="count idle days back from this UTC day, YYYY-MM-DD (default: today)",
    )
    parser.add_argument("--dry-run", action="store_true", help="only report how many users are idle")
    args = parser.parse_args(argv)
    if args.idle_days < 1:
        parser.error("--idle-days must be at least 1")
    return run(deactivate_idle_users, idle_days=args.idle_days, as_of=args.as_of, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
