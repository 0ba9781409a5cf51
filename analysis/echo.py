"""SQL echo: every statement the ORM or the toolkit sends, printed where the work happens.

Like django-extensions' ``--print-sql``: each statement once, as sent, with its parameters,
how long the database took and how many rows it reported. In a notebook it lands in the
output of the cell that ran it. ``connect(..., echo=True)``, ``%connect --echo`` or
``wb.echo = True`` turn it on. The toolkit's own bookkeeping (making a read connection
read-only) is not shown. Reads through an Arrow-native driver (``wb.frame()``'s fast route)
do not pass through SQLAlchemy: that route reports its statement with :func:`report` (when
it starts, so without time or rows).
"""

from __future__ import annotations

import re
import sys
import time
import typing as t

import sqlalchemy as sa

_STARTED = "analysis.echo.started"
_BOOKKEEPING = re.compile(r"^\s*(SET TRANSACTION READ ONLY|PRAGMA query_only\b)", re.I)
_MAX_PARAMETERS = 500


#: The echo of each engine that has one (by id: engines are not hashable by value).
_active: dict[int, StatementEcho] = {}


def report(engine: sa.Engine, statement: str, parameters: t.Any, how: str) -> None:
    """Echo a statement run on ``engine`` outside SQLAlchemy (an Arrow-native driver), if on."""
    active = _active.get(id(engine))
    if active is not None:
        shown = f"\n-- parameters: {_short(parameters)}" if parameters else ""
        active.write(f"-- {how}\n{_clauses(statement.strip())}{shown}")


class StatementEcho:
    """Prints the statements run on ``engines`` until :meth:`remove`."""

    def __init__(self, engines: t.Iterable[sa.Engine], write: t.Callable[[str], t.Any] | None = None) -> None:
        self.engines = list(engines)
        self.write = write or (lambda text: print(text, file=sys.stdout))
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        for engine in self.engines:
            sa.event.listen(engine, "before_cursor_execute", self._before)
            sa.event.listen(engine, "after_cursor_execute", self._after)
            _active[id(engine)] = self
        self._installed = True

    def remove(self) -> None:
        """Stop echoing; idempotent."""
        if not self._installed:
            return
        for engine in self.engines:
            if _active.get(id(engine)) is self:
                del _active[id(engine)]
            for name, fn in (("before_cursor_execute", self._before), ("after_cursor_execute", self._after)):
                if sa.event.contains(engine, name, fn):
                    sa.event.remove(engine, name, fn)
        self._installed = False

    def _before(self, conn: sa.Connection, cursor: t.Any, statement: str, parameters: t.Any, context: t.Any,
                executemany: bool) -> None:
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())

    def _after(self, conn: sa.Connection, cursor: t.Any, statement: str, parameters: t.Any, context: t.Any,
               executemany: bool) -> None:
        started = conn.info.get(_STARTED) or [time.perf_counter()]
        ms = (time.perf_counter() - started.pop()) * 1000
        if _BOOKKEEPING.match(statement):
            return
        self.write(format_statement(statement, parameters, ms, getattr(cursor, "rowcount", -1), executemany))


def format_statement(statement: str, parameters: t.Any, ms: float, rowcount: int, executemany: bool) -> str:
    """``-- 1.2 ms, 20 rows`` then the SQL, one clause per line, then its parameters."""
    rows = f", {rowcount:,} row{'s' if rowcount != 1 else ''}" if rowcount is not None and rowcount >= 0 else ""
    lines = [f"-- {ms:.1f} ms{rows}", _clauses(statement.strip())]
    if parameters:
        if executemany and isinstance(parameters, (list, tuple)):
            shown = f"{len(parameters):,} parameter sets, the first: {_short(parameters[0])}"
        else:
            shown = _short(parameters)
        lines.append(f"-- parameters: {shown}")
    return "\n".join(lines)


_CLAUSE = re.compile(
    r"\s+(?=(FROM|WHERE|GROUP BY|ORDER BY|HAVING|LIMIT|OFFSET|(LEFT OUTER |LEFT |INNER |FULL OUTER )?JOIN|UNION( ALL)?|"
    r"VALUES|SET|RETURNING)\b)"
)


def _clauses(sql: str) -> str:
    """Readable at a glance: each main clause on its own line (nothing is reordered)."""
    if "\n" in sql:
        return sql
    return _CLAUSE.sub("\n", sql)


def _short(parameters: t.Any) -> str:
    text = repr(parameters)
    return text if len(text) <= _MAX_PARAMETERS else text[:_MAX_PARAMETERS] + "..."
