"""What the benchmarks share: paths, the 10-column table's model, memory of helper processes,
and writing a section of bench/README.md."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import typing as t
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
README = ROOT / "bench" / "README.md"
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_app(url: str, *, name: str, tablename: str) -> t.Any:
    """A minimal Flask + Flask-SQLAlchemy app with one model of 10 mixed columns (ints, a
    nullable int, text, category-like text, float, bool, timestamp, numeric, nullable text),
    found at ``app.extensions["bench_model"]``."""
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class BenchRow(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = tablename
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[int]
        name: Mapped[str] = mapped_column(sa.String(40))
        category: Mapped[str] = mapped_column(sa.String(20))
        value: Mapped[float]
        flag: Mapped[bool]
        created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
        quantity: Mapped[int | None]
        amount: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(10, 2))
        note: Mapped[str | None] = mapped_column(sa.String(100))

    app = Flask(name)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db.init_app(app)
    app.extensions["bench_model"] = BenchRow
    return app


def children_memory_mb(field: str) -> float:
    """Memory of this process's child processes (the toolkit's SQLite reader), summed from
    /proc: ``VmRSS`` (now) or ``VmHWM`` (peak). Counted with ours: their work is part of ours."""
    me, total = os.getpid(), 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != me:
                    continue
            with open(f"/proc/{entry}/status") as f:
                total += sum(int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":"))
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return total


def write_readme(text: str, begin: str, end: str) -> None:
    """Put ``text`` (which starts with ``begin`` and ends with ``end``) into bench/README.md,
    replacing the section between those markers, or appending it."""
    current = README.read_text() if README.exists() else "# Benchmarks\n"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        current = head + text + ("\n" + tail if tail else "")
    else:
        current = current.rstrip("\n") + "\n\n" + text
    README.write_text(current)
