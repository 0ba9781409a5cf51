"""Planning a partitioned read: the partition column, its ranges (computed in the database),
the meta, and one self-contained :class:`PartitionSpec` per partition."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import re
import typing as t

import sqlalchemy as sa

from ..connections import bind_for, plain_session, read_connection, snapshot_for
from ..errors import PartitionError, QueryError
from ..read import plans as plans_
from ..read import tables
from ..read.columns import assemble
from ..read.queries import ResolvedQuery, query_error, resolve_statement

if t.TYPE_CHECKING:
    import pandas as pd

    from ..connections import AnySession
    from ..read.plans import DtypeBackend

#: Rows per partition when ``npartitions`` is not given.
ROWS_PER_PARTITION = 1_000_000
_NUMERIC_KINDS = ("int", "float", "decimal", "date", "datetime")
#: Config keys whose values are secrets, whatever they look like.
_SECRET_KEY = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|API_KEY|TOKEN|CREDENTIALS?)$", re.I)
#: Kinds of column a range can be computed on in the database.
_SPLITTABLE = (*_NUMERIC_KINDS, "string", "enum")


@dataclasses.dataclass(frozen=True)
class AppRecipe:
    """How a worker reaches the database, without a password in it.

    ``import_string`` and ``config`` rebuild the app (as :func:`analysis.connect` built it);
    ``url_env`` names an environment variable holding the database URL on the workers;
    ``bind_key`` picks the app's engine; ``local_token`` finds the planner's own engine when
    the worker runs in the planner's process.
    """

    import_string: str | None = None
    config: tuple[tuple[str, t.Any], ...] | None = None
    url_env: str | None = None
    bind_key: str | None = None
    local_token: str = ""
    app_name: str = "app"

    def check(self) -> None:
        """:class:`PartitionError` if the workers could not rebuild anything, or a secret
        would travel in the task graph."""
        if self.url_env is None and self.import_string is None:
            raise PartitionError(
                "wb.dask() needs to rebuild the app on Dask's workers, and this Workbench was"
                " given an app object: connect with an import string or a module-level factory"
                " (analysis.connect('my_app:create_app')), or name an environment variable that"
                " holds the database URL on the workers: wb.dask(..., url_env='DATABASE_URL')."
            )
        for key, value in self.config or ():
            if _is_secret(key, value):
                raise PartitionError(
                    f"The config given to connect() holds a secret ({key}), which would travel"
                    " to Dask's workers in the task graph. Give the app that setting from the"
                    " workers' environment instead (e.g. DATABASE_URL), or name a variable"
                    " holding the database URL: wb.dask(..., url_env='DATABASE_URL')."
                )


@dataclasses.dataclass(frozen=True)
class PartitionSpec:
    """Everything a worker needs to read one partition; no password in it."""

    recipe: AppRecipe
    #: The partition's SQL for the backend, ``:name`` placeholders, other colons escaped (as
    #: :func:`sqlalchemy.text` takes it).
    sql: str
    params: tuple[tuple[str, t.Any, sa.types.TypeEngine[t.Any]], ...]
    names: tuple[str, ...]
    types: tuple[sa.types.TypeEngine[t.Any], ...]
    dtype_backend: str
    #: An exported PostgreSQL snapshot the partition's transaction imports.
    snapshot: str | None
    index: int

    def statement(self) -> sa.Select[t.Any]:
        """The partition as a select whose columns carry the query's types (so the read path
        plans and casts them as it did in the notebook)."""
        text = sa.text(self.sql).bindparams(*(sa.bindparam(k, v, type_=ty) for k, v, ty in self.params))
        typed = text.columns(*(sa.column(n, ty) for n, ty in zip(self.names, self.types, strict=True)))
        sub = typed.subquery("analysis_partition")
        return sa.select(*sub.c)


@dataclasses.dataclass
class Plan:
    specs: list[PartitionSpec]
    meta: pd.DataFrame
    partition_on: str | None
    engine: sa.Engine


def plan_partitions(
    session: AnySession,
    query: t.Any,
    *,
    recipe: AppRecipe,
    npartitions: int | None,
    partition_on: str | None,
    params: t.Mapping[str, t.Any] | None,
    dtype_backend: DtypeBackend = "numpy_nullable",
    binds: t.Mapping[str | None, sa.Engine] | None = None,
) -> Plan:
    """Split ``query`` into partitions (see :mod:`analysis.partitions`)."""
    if npartitions is not None and (
        isinstance(npartitions, bool) or not isinstance(npartitions, int) or npartitions < 1
    ):
        raise ValueError(f"npartitions must be a positive number of partitions, not {npartitions!r}.")
    sess = plain_session(session)
    resolved = resolve_statement(query, params)
    if resolved.is_text:
        raise PartitionError(
            "wb.dask() needs the column types to build the partitions' dtypes without reading"
            " data, and raw SQL has none: pass a select(), a model, or"
            " sa.text(sql).columns(id=sa.Integer, ...)."
        )
    engine = bind_for(sess, resolved.statement)
    snapshot = snapshot_for(sess, engine)
    if snapshot is not None and snapshot.exported is None:
        raise PartitionError(
            f"{engine.dialect.name} cannot share a snapshot with other connections, so Dask's"
            " partitions would each see another moment. Inside wb.snapshot() read with"
            " wb.frame() or wb.frames(), or call wb.dask() outside the block."
        )
    column_plans = plans_.plan_columns(resolved.names, resolved.types, engine.dialect)
    untyped = [plan.name for plan in column_plans if plan.kind == "raw"]
    if untyped:
        raise PartitionError(
            f"wb.dask() needs a type for every column, and {', '.join(map(repr, untyped))} has none:"
            " give it one with sa.cast(..., Type) or sa.type_coerce(..., Type)."
        )
    meta = assemble(list(resolved.names), tables.empty_columns(column_plans), dtype_backend)
    recipe.check()
    keys = [key for key, bound in (binds or {}).items() if bound is engine]
    recipe = dataclasses.replace(recipe, bind_key=keys[0] if keys else None)

    column = _partition_column(resolved, partition_on, npartitions)
    inner = t.cast(sa.Select[t.Any], resolved.statement).subquery("analysis_query")
    predicates: list[sa.ColumnElement[bool] | None] = [None]
    if column is not None:
        plan = column_plans[resolved.names.index(column)]
        bounds = _boundaries(sess, inner.c[column], plan, npartitions)
        predicates = _predicates(inner.c[column], bounds)
    dialect = _named_dialect(engine)
    specs = []
    for i, predicate in enumerate(predicates):
        statement = sa.select(*inner.c)
        if predicate is not None:
            statement = statement.where(predicate)
        sql, bound = _compile(statement, resolved.params, dialect)
        specs.append(
            PartitionSpec(
                recipe, sql, bound, tuple(resolved.names), tuple(t.cast(list[t.Any], resolved.types)),
                dtype_backend, snapshot.exported if snapshot is not None else None, i,
            )
        )
    return Plan(specs, meta, column, engine)


def _partition_column(resolved: ResolvedQuery, partition_on: str | None, npartitions: int | None) -> str | None:
    if partition_on is not None:
        if partition_on not in resolved.names:
            raise QueryError(
                f"partition_on=: no column named {partition_on!r}; the query's columns are"
                f" {', '.join(resolved.names)}."
            )
        return partition_on
    for name, expression in zip(resolved.names, resolved.expressions or (), strict=False):
        if _is_primary_key(expression):
            return name
    if npartitions in (None, 1):
        return None
    raise PartitionError(
        "The query has no primary key column to split on: name a column of the query with"
        " partition_on= (an integer, date or timestamp column splits best)."
    )


def _is_primary_key(expression: t.Any) -> bool:
    column = getattr(expression, "expression", expression)
    while isinstance(column, sa.Label):
        column = column.element
    return isinstance(column, sa.Column) and bool(column.primary_key)


def _boundaries(
    session: sa.orm.Session, column: sa.ColumnElement[t.Any], plan: plans_.ColumnPlan, npartitions: int | None
) -> list[t.Any]:
    """Cut points ``b1 < b2 < ...``, computed in the database: equal widths between the
    column's minimum and maximum for numbers and times, quantiles (``ntile``) for text."""
    if plan.kind not in _SPLITTABLE:
        raise PartitionError(
            f"Cannot split on {plan.name!r}, a {plan.kind} column: partition_on= takes an integer, decimal,"
            " float, date, timestamp, text or Enum column."
        )
    source = column.table
    numeric = plan.kind in _NUMERIC_KINDS
    # The count only when it decides the number of partitions: min and max come from an index.
    aggregates: list[sa.ColumnElement[t.Any]] = [sa.func.count()] if npartitions is None else []
    if numeric:
        aggregates += [sa.func.min(column), sa.func.max(column)]
    try:
        with read_connection(session, sa.select(column).select_from(source)) as conn:
            found = list(conn.execute(sa.select(*aggregates).select_from(source)).one()) if aggregates else []
            rows = found.pop(0) if npartitions is None else None
            extremes = found
            n = npartitions or max(1, math.ceil((rows or 0) / ROWS_PER_PARTITION))
            if n == 1 or rows == 0:
                return []
            if numeric:
                low, high = extremes
                return [] if low is None or low == high else _equal_widths(low, high, n)
            tile = sa.func.ntile(n).over(order_by=column).label("tile")
            tiles = sa.select(column.label("value"), tile).select_from(source).where(column.is_not(None)).subquery()
            firsts = sa.select(sa.func.min(tiles.c.value)).group_by(tiles.c.tile).order_by(sa.func.min(tiles.c.value))
            values = [v for (v,) in conn.execute(firsts)]
    except sa.exc.DBAPIError as e:
        raise query_error(e) from e
    return sorted(set(values[1:]))


def _equal_widths(low: t.Any, high: t.Any, n: int) -> list[t.Any]:
    if isinstance(low, int):
        cuts = [low + (high - low + 1) * i // n for i in range(1, n)]
    elif isinstance(low, dt.date) and not isinstance(low, dt.datetime):
        days = (high - low).days + 1
        cuts = [low + dt.timedelta(days=days * i // n) for i in range(1, n)]
    else:  # floats, decimals, timestamps
        cuts = [low + (high - low) * i / n for i in range(1, n)]
    return sorted({c for c in cuts if low < c <= high})


def _predicates(column: sa.ColumnElement[t.Any], bounds: list[t.Any]) -> list[sa.ColumnElement[bool] | None]:
    """Half-open ranges that together hold every row once: NULLs and anything below ``b1`` in
    the first, anything from the last cut point up in the last."""
    if not bounds:
        return [None]
    predicates: list[sa.ColumnElement[bool] | None] = [sa.or_(column < bounds[0], column.is_(None))]
    for low, high in zip(bounds, bounds[1:], strict=False):
        predicates.append(sa.and_(column >= low, column < high))
    predicates.append(column >= bounds[-1])
    return predicates


def _named_dialect(engine: sa.Engine) -> sa.Dialect:
    """The engine's dialect rendering ``:name`` placeholders, without casts on them (a
    worker's compile adds its own)."""
    dialect = copy.copy(engine.dialect)
    dialect.paramstyle = "named"
    dialect.positional = False
    dialect.bind_typing = sa.engine.BindTyping.NONE
    return dialect


def _compile(
    statement: sa.Select[t.Any], params: t.Mapping[str, t.Any], dialect: sa.Dialect
) -> tuple[str, tuple[tuple[str, t.Any, sa.types.TypeEngine[t.Any]], ...]]:
    compiled: t.Any = statement.compile(dialect=dialect)
    state = compiled.construct_expanded_state(compiled.construct_params(dict(params)))
    types: dict[str, sa.types.TypeEngine[t.Any]] = {name: bind.type for name, bind in compiled.binds.items()}
    for original, expanded in (state.parameter_expansion or {}).items():
        types.update(dict.fromkeys(expanded, types[original]))
    names = set(state.parameters)
    # Every colon that does not start one of our placeholders is escaped for sa.text().
    placeholder = re.compile(r":(?:" + "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True)) + r")\b")

    def escape(segment: str) -> str:
        return segment.replace(":", "\\:")

    sql, position = [], 0
    for match in placeholder.finditer(state.statement) if names else ():
        sql.append(escape(state.statement[position:match.start()]))
        sql.append(match.group(0))
        position = match.end()
    sql.append(escape(state.statement[position:]))
    bound = tuple((name, value, types.get(name, sa.types.NullType())) for name, value in state.parameters.items())
    return "".join(sql), bound


def _is_secret(key: str, value: t.Any) -> bool:
    if value is None or value == "":
        return False
    if _SECRET_KEY.search(key):
        return True
    texts = [value] if isinstance(value, str) else [v for v in value.values() if isinstance(v, str)] if isinstance(
        value, dict
    ) else []
    for text in texts:
        try:
            url = sa.engine.make_url(text)
        except Exception:
            continue
        if url.password:
            return True
    return False
