"""Deterministic demo data: the same arguments always produce the same rows.

Rows are generated column-wise with numpy and inserted with bulk ``executemany`` in batches, so
a million events take seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import decimal
import typing as t

import sqlalchemy as sa

from .db import db
from .models import EVENT_KINDS, Data, Event, Plan, User

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
END = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)

COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", "NL", "ES", "SE", "AU", "MX", "PL"]
COUNTRY_WEIGHTS = [30, 10, 9, 7, 9, 6, 5, 5, 4, 4, 3, 3, 3, 2]
PLAN_WEIGHTS = {Plan.free: 70, Plan.pro: 20, Plan.team: 8, Plan.enterprise: 2}
KIND_WEIGHTS = [40, 15, 3, 12, 6, 10, 6, 1, 4, 3]
FIRST_NAMES = ["Ada", "Grace", "Linus", "Margaret", "Guido", "Zoë", "José", "Anaïs", "Søren", "李", "Ola", "Nia"]
LAST_NAMES = ["Lovelace", "Hopper", "Hamilton", "van Rossum", "Müller", "García", "O'Brien", "Nakamura", "Kowalski"]
REFERRERS = ["https://www.google.com/", "https://news.ycombinator.com/", "https://t.co/x", "newsletter"]

Progress = t.Callable[[int], None]


def seed(
    *,
    users: int,
    events: int,
    data_points: int = 1000,
    random_seed: int = 42,
    batch_size: int = 50_000,
    progress: Progress | None = None,
) -> None:
    """Insert ``users`` users, ``events`` events and ``data_points`` rows of ``Data``.

    ``progress`` is called with the number of rows written after each batch.
    """
    import numpy as np

    if users < 1 and events > 0:
        raise ValueError("events need users to belong to: pass --users 1 or more")
    rng = np.random.default_rng(random_seed)
    report = progress or (lambda n: None)

    with db.engine.begin() as conn:
        for batch in _user_batches(rng, users, batch_size):
            conn.execute(sa.insert(User), batch)
            report(len(batch))
        for batch in _event_batches(rng, users, events, batch_size):
            conn.execute(sa.insert(Event), batch)
            report(len(batch))
        for batch in _data_batches(rng, data_points, batch_size):
            conn.execute(sa.insert(Data), batch)
            report(len(batch))


def reset() -> None:
    """Delete the demo rows, children first."""
    with db.engine.begin() as conn:
        # MariaDB checks the self-referencing foreign key row by row while deleting.
        conn.execute(sa.update(User).values(referrer_id=None))
        for model in (Event, Data, User):
            conn.execute(sa.delete(model))


def _timestamps(rng: t.Any, n: int, start: dt.datetime = START, end: dt.datetime = END) -> list[dt.datetime]:
    span = int((end - start).total_seconds() * 1_000_000)
    offsets = rng.integers(0, span, size=n)
    return [start + dt.timedelta(microseconds=int(us)) for us in offsets]


def _choice(rng: t.Any, values: t.Sequence[t.Any], weights: t.Sequence[float], n: int) -> list[t.Any]:
    import numpy as np

    p = np.asarray(weights, dtype=float)
    idx = rng.choice(len(values), size=n, p=p / p.sum())
    return [values[i] for i in idx]


def _user_batches(rng: t.Any, n: int, batch_size: int) -> t.Iterator[list[dict[str, t.Any]]]:
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        ids = range(start + 1, start + size + 1)
        countries = _choice(rng, COUNTRIES, COUNTRY_WEIGHTS, size)
        plans = _choice(rng, list(PLAN_WEIGHTS), list(PLAN_WEIGHTS.values()), size)
        active = rng.random(size) < 0.85
        signed_up = _timestamps(rng, size)
        first = _choice(rng, FIRST_NAMES, [1] * len(FIRST_NAMES), size)
        last = _choice(rng, LAST_NAMES, [1] * len(LAST_NAMES), size)
        has_birth = rng.random(size) < 0.7
        birth_days = rng.integers(0, 365 * 50, size=size)
        has_referrer = rng.random(size) < 0.2
        referrer_pick = rng.random(size)
        has_bio = rng.random(size) < 0.3
        yield [
            {
                "id": uid,
                "email": f"user{uid}@example.com",
                "name": f"{first[i]} {last[i]}",
                "country": countries[i],
                "active": bool(active[i]),
                "plan": plans[i],
                "signed_up_at": signed_up[i],
                "birth_date": dt.date(1955, 1, 1) + dt.timedelta(days=int(birth_days[i]))
                if has_birth[i]
                else None,
                # Only earlier users can have referred this one, so the foreign key holds.
                "referrer_id": int(referrer_pick[i] * (uid - 1)) + 1
                if has_referrer[i] and uid > 1
                else None,
                "bio": f"Likes {countries[i]}, data, and \"quotes\", commas" if has_bio[i] else None,
            }
            for i, uid in enumerate(ids)
        ]


def _event_batches(
    rng: t.Any, users: int, n: int, batch_size: int
) -> t.Iterator[list[dict[str, t.Any]]]:
    cents = decimal.Decimal("0.01")
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        user_ids = rng.integers(1, users + 1, size=size)
        kinds = _choice(rng, EVENT_KINDS, KIND_WEIGHTS, size)
        occurred = _timestamps(rng, size)
        amounts = rng.integers(100, 50_000, size=size)
        durations = rng.integers(5, 30_000, size=size)
        has_duration = rng.random(size) < 0.8
        scores = rng.normal(0.5, 0.2, size=size)
        has_score = rng.random(size) < 0.9
        mobile = rng.random(size) < 0.4
        referrer_idx = rng.integers(0, len(REFERRERS) * 3, size=size)
        yield [
            {
                "id": start + i + 1,
                "user_id": int(user_ids[i]),
                "kind": kinds[i],
                "occurred_at": occurred[i],
                "amount": (decimal.Decimal(int(amounts[i])) * cents)
                if kinds[i] in ("purchase", "refund")
                else None,
                "duration_ms": int(durations[i]) if has_duration[i] else None,
                "score": float(scores[i]) if has_score[i] else None,
                "is_mobile": bool(mobile[i]),
                "referrer": REFERRERS[referrer_idx[i]] if referrer_idx[i] < len(REFERRERS) else None,
            }
            for i in range(size)
        ]


def _data_batches(rng: t.Any, n: int, batch_size: int) -> t.Iterator[list[dict[str, t.Any]]]:
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        values = rng.normal(20.0, 5.0, size=size)
        created = sorted(_timestamps(rng, size))
        yield [
            {"value": float(values[i]), "source": "seed", "created_at": created[i]}
            for i in range(size)
        ]
