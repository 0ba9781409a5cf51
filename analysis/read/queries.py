"""Turn anything a user calls "a query" into one executable statement with known columns.

Users bring a legacy ``Model.query...`` Query, a 2.0 ``select()`` (ORM entities, columns,
joins, aggregates, labels), a model class, a ``Table``, or a SQL string with ``:name``
parameters. :func:`resolve_query` turns each of them into a :class:`ResolvedQuery`: a statement
ready to execute, its parameters, the DataFrame column names, and the SQLAlchemy type of each
column (which drives the dtype mapping in :mod:`analysis.read.plans`).

Column names follow the model, not the SQL: an entity contributes its attribute names
(``id``, ``email``; never ``users_1_id``), a labelled column its label. Duplicates are made
unique the way SQLAlchemy does it for result keys: the first keeps its name, later ones get
``_1``, ``_2``... (``id``, ``id_1``). An expression without a name is called ``column_N`` (its
1-based position).
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Query, Session, scoped_session
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import CompoundSelect, Select, TextualSelect

from ..connections import connection_lost_error, is_connection_lost, is_read_statement, read_connection
from ..errors import DatabaseUnavailableError, QueryError
from .cancel import connection_canceller, interruptible

_UNNAMED = ("_no_label", "?", "")


@dataclasses.dataclass
class ResolvedQuery:
    """A query ready to execute, with the DataFrame columns it produces.

    ``statement`` returns exactly ``len(names)`` columns, in order; its result keys are
    ``names`` for SQLAlchemy constructs (raw SQL keeps whatever the SQL says, so match
    columns by position). ``types[i]`` is the SQLAlchemy type of column ``i``, or ``None``
    when it is not known (raw SQL).
    """

    statement: sa.Executable
    params: dict[str, t.Any]
    names: list[str]
    types: list[sa.types.TypeEngine[t.Any] | None]
    #: The column expressions of a ``select()`` (before labelling), so the statement can be
    #: rebuilt with other columns; ``None`` for raw SQL and UNIONs.
    expressions: list[t.Any] | None = dataclasses.field(default=None, repr=False)

    @property
    def is_text(self) -> bool:
        """Raw SQL, whose column types are only known once it runs."""
        return isinstance(self.statement, TextClause) and not isinstance(self.statement, TextualSelect)


def resolve_query(
    query: t.Any,
    *,
    params: t.Mapping[str, t.Any] | None = None,
    session: Session | scoped_session[Session] | None = None,
) -> ResolvedQuery:
    """Resolve ``query`` into a :class:`ResolvedQuery`, or raise :class:`QueryError`.

    ``params`` binds ``:name`` parameters of raw SQL (and ``bindparam()`` values of
    constructs); values are always bound, never formatted into the SQL. ``session`` is needed
    only for raw SQL, whose column names are learnt by asking the database.

    >>> rq = resolve_query(sa.select(User.id, User.email).where(User.country == "DE"))
    >>> rq.names
    ['id', 'email']
    """
    resolved = resolve_statement(query, params)
    if resolved.is_text:
        if session is None:
            raise TypeError("resolve_query() needs session= to learn the columns of raw SQL.")
        resolved.names = describe_text(resolved, session)
        resolved.types = [None] * len(resolved.names)
    return resolved


def resolve_statement(query: t.Any, params: t.Mapping[str, t.Any] | None = None) -> ResolvedQuery:
    """Everything :func:`resolve_query` does without touching the database.

    Raw SQL comes back with empty ``names``/``types``: they are known once it runs.
    """
    return _resolve(query, dict(params or {}))


def _resolve(query: t.Any, params: dict[str, t.Any]) -> ResolvedQuery:
    if isinstance(query, str):
        if not query.strip():
            raise QueryError("The SQL string is empty: pass a SELECT statement.")
        return _resolve_text(sa.text(_strip_semicolon(query)), params)
    if isinstance(query, Query):
        return _resolve(query.statement, params)
    if isinstance(query, TextualSelect):
        names = unique_names([c.key for c in query.selected_columns])
        return ResolvedQuery(query, _check_params(query, params), names, [c.type for c in query.selected_columns])
    if isinstance(query, TextClause):
        return _resolve_text(query, params)
    if isinstance(query, Select):
        return _resolve_select(query, params)
    if isinstance(query, CompoundSelect):
        columns = list(query.selected_columns)
        names = unique_names([_column_name(c.key, i) for i, c in enumerate(columns)])
        return ResolvedQuery(query, _check_params(query, params), names, [c.type for c in columns])
    if isinstance(query, sa.FromClause) and not isinstance(query, sa.Join) or _is_mapped(query):
        return _resolve_select(sa.select(query), params)
    if isinstance(query, sa.Join):
        return _resolve_select(sa.select(*query.c), params)
    if isinstance(query, sa.ColumnElement) or hasattr(query, "__clause_element__") and isinstance(
        query.__clause_element__(), sa.ColumnElement
    ):
        return _resolve_select(sa.select(query), params)
    if isinstance(query, sa.Executable):
        raise QueryError(
            f"{type(query).__name__} statements do not return rows to put in a DataFrame: pass"
            " a select(), a Model.query, a model class, a Table or a SELECT string."
        )
    raise QueryError(
        f"Cannot make a DataFrame from a {type(query).__module__}.{type(query).__qualname__}:"
        " pass a select() / db.select(), a Model.query..., a model class, a Table, or a SQL"
        " string such as \"SELECT * FROM users WHERE country = :country\" with params={...}."
    )


def _resolve_select(stmt: Select[t.Any], params: dict[str, t.Any]) -> ResolvedQuery:
    columns: list[tuple[str, sa.ColumnElement[t.Any]]] = []
    for description in stmt.column_descriptions:
        expr = description["expr"]
        if _is_mapped(expr):
            mapper = sa.inspect(expr).mapper
            for prop in mapper.column_attrs:
                columns.append((prop.key, getattr(expr, prop.key)))
        elif isinstance(expr, sa.orm.Bundle):
            exprs = t.cast(list[sa.ColumnElement[t.Any]], expr.exprs)
            columns += list(zip(expr.c.keys(), exprs, strict=True))
        else:
            columns.append((description["name"], expr))
    names = unique_names([_column_name(name, i) for i, (name, _) in enumerate(columns)])
    labelled = [column.label(name) for name, (_, column) in zip(names, columns, strict=True)]
    types = [_type_of(c) for _, c in columns]
    statement = stmt.with_only_columns(*labelled, maintain_column_froms=True)
    return ResolvedQuery(
        statement, _check_params(statement, params), names, types, [column for _, column in columns]
    )


def _resolve_text(clause: TextClause, params: dict[str, t.Any]) -> ResolvedQuery:
    if not is_read_statement(clause.text):
        first = clause.text.split(None, 1)[0].upper()
        raise QueryError(
            f"frame() runs queries that return rows, and this SQL starts with {first}. Use"
            " db.session.execute(sa.text(...)) for statements that change data."
        )
    return ResolvedQuery(clause, _check_params(clause, params), [], [])


def _check_params(statement: sa.Executable, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Refuse missing or unknown parameter names with the names that would work."""
    compiled_binds = _bind_names(statement)
    required = {name for name, has_value in compiled_binds.items() if not has_value}
    missing = sorted(required - params.keys())
    if missing:
        raise QueryError(
            f"The query needs a value for {', '.join(':' + m for m in missing)}: pass"
            f" params={{{', '.join(repr(m) + ': ...' for m in missing)}}}."
        )
    unknown = sorted(params.keys() - compiled_binds.keys())
    if unknown:
        known = ", ".join(":" + n for n in sorted(compiled_binds)) or "none"
        raise QueryError(
            f"Unknown parameter {', '.join(repr(u) for u in unknown)}: the query's parameters"
            f" are {known}."
        )
    return dict(params)


def _bind_names(statement: sa.Executable) -> dict[str, bool]:
    """Named parameters of ``statement`` -> whether they already carry a value."""
    if isinstance(statement, TextClause) and not isinstance(statement, TextualSelect):
        return _text_bind_names(statement)
    found: dict[str, bool] = {}
    for element in sa.sql.visitors.iterate(t.cast(sa.ClauseElement, statement)):
        if isinstance(element, sa.BindParameter) and not element.unique:
            found[element.key] = not element.required
    if isinstance(statement, TextualSelect):
        found.update(_text_bind_names(t.cast(TextClause, statement.element)))
    return found


def _text_bind_names(clause: TextClause) -> dict[str, bool]:
    """The ``:name`` parameters of raw SQL, as the compiler finds them (``Compiled.binds``)."""
    binds = clause.compile().binds
    return {name: bp.value is not None or bp.callable is not None for name, bp in binds.items()}


def describe_text(resolved: ResolvedQuery, session: Session | scoped_session[Session]) -> list[str]:
    """Ask the database which columns raw SQL returns, without fetching its rows.

    The SQL is wrapped as ``SELECT * FROM (...) WHERE 1 = 0`` where the backend keeps the
    column names of a derived table intact, else run on a streaming cursor whose description
    is read before any row is fetched.
    """
    try:
        with read_connection(session, resolved.statement) as conn:
            return unique_names([str(k) for k in _text_keys(conn, resolved)])
    except sa.exc.DBAPIError as e:
        raise query_error(e) from e


def _text_keys(conn: sa.Connection, resolved: ResolvedQuery) -> list[str]:
    clause = t.cast(TextClause, resolved.statement)
    # SQLite renames duplicate names of a derived table ("id:1"), so it gets the streaming
    # probe, which costs it one row; MySQL/MariaDB refuse duplicates and fall through.
    if conn.dialect.name != "sqlite" and re.match(r"^\s*(select|with|values|\()", clause.text, re.I):
        probe = sa.text(f"SELECT * FROM ({clause.text}) AS _describe LIMIT 0")
        try:
            with conn.begin_nested():
                # MariaDB evaluates the derived table even under LIMIT 0: Ctrl-C must stop it too.
                result = interruptible(lambda: conn.execute(probe, resolved.params), connection_canceller(conn))
                return list(result.keys())
        except sa.exc.DBAPIError:
            pass  # not usable as a derived table: fall through to a streaming probe
    # SQLite runs the query up to its first row here: Ctrl-C must be able to stop it.
    result = interruptible(
        lambda: conn.execute(clause, resolved.params, execution_options={"stream_results": True}),
        connection_canceller(conn),
    )
    try:
        return list(result.keys())
    finally:
        result.close()


def query_error(error: sa.exc.DBAPIError, statement: t.Any = None) -> QueryError | DatabaseUnavailableError:
    """A :class:`QueryError` naming what the database said about a query, or, when the
    connection went away, a :class:`DatabaseUnavailableError` saying to run it again."""
    if is_connection_lost(error):
        return connection_lost_error(error)
    reason = str(error.orig).strip() if error.orig is not None else str(error)
    sql = str(error.statement if error.statement is not None else statement if statement is not None else "").strip()
    if len(sql) > 300:
        sql = sql[:300] + "..."
    return QueryError(f"The database rejected the query: {reason}\nSQL: {sql}")


def unique_names(names: t.Sequence[str]) -> list[str]:
    """Make ``names`` unique: the first keeps its name, later ones get ``_1``, ``_2``...

    A generated name never collides with a name given later in the list either.
    """
    taken = set(names)
    seen: set[str] = set()
    result = []
    for name in names:
        if name in seen:
            n = 1
            while f"{name}_{n}" in taken or f"{name}_{n}" in seen:
                n += 1
            name = f"{name}_{n}"
        seen.add(name)
        result.append(name)
    return result


def _column_name(name: t.Any, position: int) -> str:
    if not isinstance(name, str) or name in _UNNAMED or name.startswith(("anon_", "_no_label")):
        return f"column_{position + 1}"
    return name


def _type_of(column: t.Any) -> sa.types.TypeEngine[t.Any] | None:
    type_ = getattr(column, "type", None)
    return None if type_ is None or isinstance(type_, sa.types.NullType) else type_


def _is_mapped(obj: t.Any) -> bool:
    """A mapped class or an ``aliased()`` one."""
    if isinstance(obj, type):
        return sa.inspect(obj, raiseerr=False) is not None and hasattr(sa.inspect(obj), "mapper")
    return isinstance(obj, sa.orm.util.AliasedClass)


def _strip_semicolon(sql: str) -> str:
    return sql.strip().rstrip(";").rstrip()
