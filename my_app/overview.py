"""Row counts per table: what the overview page and the JSON API show."""

from __future__ import annotations

import sqlalchemy as sa

from .db import db


def table_row_counts() -> list[tuple[str, int]]:
    """``(table name, row count)`` for every table the models declare, in name order."""
    counts = []
    for name, table in sorted(db.metadata.tables.items()):
        count = db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        counts.append((name, count))
    return counts
