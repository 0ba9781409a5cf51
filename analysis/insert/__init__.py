"""Bulk-insert a DataFrame into a model's table: :meth:`Workbench.insert_frame`.

What ``df.to_sql`` leaves to you, done here:

* Columns are checked against the model before anything is sent: an unknown column, a missing
  required column or a NULL in a NOT NULL column is one error naming the columns (or the row).
* Values are converted for the model's column types (:mod:`analysis.insert.values`): NaN/NaT/pd.NA
  become NULL, tz-aware timestamps, Enum members, Decimals, nullable integers, booleans and
  JSON documents are written the way the ORM would write them, and Python-side column defaults
  fill columns the frame leaves out.
* All or nothing: the rows go in the Workbench session's transaction; if any row fails, that
  transaction is rolled back and :class:`~analysis.errors.InsertError` names the row.
* Fast: ``COPY ... FROM STDIN`` on PostgreSQL (psycopg 3), one streamed ``executemany`` on
  SQLite, batched ``executemany`` elsewhere, with no per-row ORM or SQLAlchemy overhead.

The insert does not commit: it is part of the session's transaction, which a job commits when it
succeeds and a notebook commits with ``db.session.commit()``.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa

from ..connections import WRITES_KEY, plain_session
from ..errors import BadValue, InsertError, ReadOnlyError, first_line
from ..read import check_chunksize
from .values import converter
from .writers import is_driver_error, position_from_driver, writer_for

if t.TYPE_CHECKING:
    import pandas as pd

    from ..connections import AnySession

#: What ``on_conflict`` accepts. "ignore" and "update" are supported on SQLite and PostgreSQL.
OnConflict = t.Literal["error", "ignore", "update"]
ON_CONFLICT: tuple[OnConflict, ...] = ("error", "ignore", "update")
#: Rows converted and sent at a time; bounds memory, not transactions.
DEFAULT_CHUNKSIZE = 10_000
_UPSERT_DIALECTS = ("sqlite", "postgresql")


def insert_into(
    session: AnySession,
    model: t.Any,
    df: pd.DataFrame,
    *,
    writable: bool,
    chunksize: int = DEFAULT_CHUNKSIZE,
    on_conflict: OnConflict = "error",
    models: t.Mapping[str, type] | None = None,
) -> int:
    """Insert ``df`` into ``model``'s table in ``session``'s transaction; return the rows written.

    See :meth:`Workbench.insert_frame` for the contract. ``writable`` is whether the caller
    opened the session for writing; ``models`` (name -> class) lets ``model`` be a name.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"insert_frame needs a pandas DataFrame, not {type(df).__name__}.")
    if on_conflict not in ON_CONFLICT:
        raise ValueError(
            f"on_conflict={on_conflict!r} is not supported; use one of {', '.join(map(repr, ON_CONFLICT))}."
        )
    chunksize = check_chunksize(chunksize)
    if not writable:
        raise ReadOnlyError(
            "insert_frame writes, and this Workbench is read-only. Open a writable one:"
            " analysis.connect(..., writable=True), %connect --writable, or run the insert in"
            " a job (with analysis.job(...) as wb:), which is writable."
        )
    mapper = _mapper(model, models or {})
    session = plain_session(session)
    # Pending ORM changes go first, so the frame may refer to rows added in this session.
    session.flush()
    conn = session.connection(bind_arguments={"mapper": mapper})
    plan = Plan.build(mapper, df, conn, chunksize=chunksize, on_conflict=on_conflict)
    if plan.size == 0:
        return 0
    writer = writer_for(conn.dialect)
    try:
        written = writer(conn, plan)
    except BaseException as e:
        try:
            session.rollback()
        except Exception:
            # The connection itself is gone (server restart...); SQLAlchemy discards it, and
            # the write's own error, raised below, is the one that explains what happened.
            pass
        if is_driver_error(e, conn.dialect):
            raise plan.error(e) from e
        raise
    conn.info[WRITES_KEY] = True  # writes made on the raw driver connection, for release()
    return written


# -- planning: validate the frame against the model, before anything is sent ------------------


@dataclasses.dataclass
class Plan:
    table: sa.Table
    columns: list[sa.Column[t.Any]]
    sources: list[t.Callable[[int, int], list[t.Any]]]
    size: int
    index: pd.Index
    chunksize: int
    on_conflict: str
    #: Columns given with explicit values whose sequence must be moved past them (PostgreSQL).
    explicit_autoincrement: list[sa.Column[t.Any]]
    frame: pd.DataFrame
    #: Database column name -> frame column name, for the columns the frame gives.
    frame_columns: dict[str, t.Any]
    #: Rows handed to the driver so far, to name the row a driver error is about.
    sent: int = 0

    @classmethod
    def build(
        cls, mapper: sa.orm.Mapper[t.Any], df: pd.DataFrame, conn: sa.Connection, *,
        chunksize: int, on_conflict: str,
    ) -> Plan:
        table = _single_table(mapper)
        frame = _with_named_index(df)
        by_name = _columns_by_frame_name(mapper, table)
        dialect = conn.dialect

        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise InsertError(f"The frame has duplicate columns: {', '.join(duplicated)}. Column names must be unique.")
        unknown = [c for c in frame.columns if c not in by_name]
        if unknown:
            raise InsertError(
                f"{mapper.class_.__name__} ({table.name}) has no"
                f" {_columns(unknown)}{_from_index(unknown, df)}. Its columns are:"
                f" {', '.join(by_name_keys(mapper, table))}. Rename or drop the frame's columns"
                " (df.rename(columns=...), df.drop(columns=...))."
            )
        given = {by_name[c]: c for c in frame.columns}
        computed = [c.name for c in given if c.computed is not None]
        if computed:
            raise InsertError(
                f"The {_columns(computed)} of {table.name} are computed by the database; drop"
                " them from the frame."
            )
        missing = [c for c in table.columns if c not in given and not _fills_itself(c, table)]
        polymorphic = _polymorphic_fill(mapper, table, given)
        missing = [c for c in missing if c is not polymorphic]
        if missing:
            raise InsertError(
                f"The frame is missing the required {_columns([c.name for c in missing])} of"
                f" {mapper.class_.__name__} ({table.name}): NOT NULL, with no default. Add"
                " them to the frame."
            )
        for column, name in given.items():
            if not column.nullable:
                absent = frame[name].isna().to_numpy()
                if absent.any():
                    position = int(absent.argmax())
                    raise InsertError(
                        f"{_row(frame.index, position)}, column {name!r}: missing value (NaN/None),"
                        f" but {table.name}.{column.name} is NOT NULL. Fill or drop those rows"
                        " first; nothing was written."
                    )
        if on_conflict != "error" and dialect.name not in _UPSERT_DIALECTS:
            raise InsertError(
                f"on_conflict={on_conflict!r} is supported on SQLite and PostgreSQL, not"
                f" {dialect.name}; use on_conflict='error' there."
            )
        primary_key = list(table.primary_key.columns)
        if on_conflict == "update":
            absent_keys = [c.name for c in primary_key if c not in given]
            if absent_keys:
                raise InsertError(
                    "on_conflict='update' matches rows by primary key, so the frame needs the"
                    f" {_columns(absent_keys)}."
                )
            keys = [given[c] for c in primary_key]
            repeated = frame.duplicated(subset=keys, keep=False).to_numpy()
            if repeated.any():
                position = int(repeated.argmax())
                raise InsertError(
                    f"{_row(frame.index, position)} repeats a primary key value that another"
                    " row also has; with on_conflict='update' each key may appear once."
                )

        columns: list[sa.Column[t.Any]] = []
        sources: list[t.Callable[[int, int], list[t.Any]]] = []
        for column, name in given.items():
            columns.append(column)
            sources.append(_frame_source(frame[name], converter(column, dialect)))
        for column in table.columns:
            if column in given:
                continue
            if column is polymorphic:
                value = mapper.polymorphic_identity
                columns.append(column)
                sources.append(_constant_source(value, column, dialect))
            elif column.default is not None and not column.default.is_sequence and column.server_default is None:
                columns.append(column)
                sources.append(_default_source(column, conn))
        explicit = [
            c for c in given
            if c is table.autoincrement_column and dialect.name == "postgresql"
        ]
        return cls(
            table=table, columns=columns, sources=sources, size=len(frame), index=frame.index,
            chunksize=chunksize, on_conflict=on_conflict, explicit_autoincrement=explicit,
            frame=frame, frame_columns={c.name: name for c, name in given.items()},
        )

    def rows(self) -> t.Iterator[tuple[t.Any, ...]]:
        """Converted rows, chunk by chunk; ``self.sent`` counts what was handed out."""
        for start in range(0, self.size, self.chunksize):
            stop = min(self.size, start + self.chunksize)
            values = []
            for column, source in zip(self.columns, self.sources, strict=True):
                try:
                    values.append(source(start, stop))
                except BadValue as e:
                    raise InsertError(
                        f"{_row(self.index, start + e.position)}, column {column.name!r}:"
                        f" {e.message}. Nothing was written."
                    ) from e
            for row in zip(*values, strict=False):
                self.sent += 1
                yield row

    def error(self, e: BaseException, position: int | None = None) -> BaseException:
        """The error to raise for a failure while writing (the transaction is rolled back)."""
        if isinstance(e, (InsertError, ReadOnlyError)):
            return e
        orig = getattr(e, "orig", None) or e
        reason = first_line(orig)
        if position is None:
            position = position_from_driver(orig, self)
        where = _row(self.index, position) if position is not None else "A row"
        return InsertError(
            f"{where} could not be inserted into {self.table.name}: {reason}. Nothing was"
            " written: the transaction was rolled back (with any other uncommitted changes in"
            " this session)."
        )


def by_name_keys(mapper: sa.orm.Mapper[t.Any], table: sa.Table) -> list[str]:
    """The frame column names the model accepts: attribute names (column names where they differ)."""
    names = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if isinstance(column, sa.Column) and column.table is table:
            names.append(prop.key if prop.key == column.name else f"{prop.key} ({column.name})")
    return names


def _columns_by_frame_name(mapper: sa.orm.Mapper[t.Any], table: sa.Table) -> dict[t.Any, sa.Column[t.Any]]:
    by_name: dict[t.Any, sa.Column[t.Any]] = {c.name: c for c in table.columns}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if isinstance(column, sa.Column) and column.table is table:
            by_name[prop.key] = column
    return by_name


def _mapper(model: t.Any, models: t.Mapping[str, type]) -> sa.orm.Mapper[t.Any]:
    if isinstance(model, str):
        if model not in models:
            raise KeyError(f"No model named {model!r}; models: {', '.join(models)}")
        model = models[model]
    try:
        mapper = sa.inspect(model)
    except sa.exc.NoInspectionAvailable:
        mapper = None
    if not isinstance(mapper, sa.orm.Mapper):
        raise TypeError(
            f"insert_frame needs a model class (or its name), not {model!r}; models:"
            f" {', '.join(models)}."
        )
    return mapper


def _single_table(mapper: sa.orm.Mapper[t.Any]) -> sa.Table:
    table = mapper.local_table
    if len(mapper.tables) > 1 or not isinstance(table, sa.Table):
        raise InsertError(
            f"{mapper.class_.__name__} spans several tables (joined inheritance); insert_frame"
            " writes one table. Insert into each table's model in turn."
        )
    return table


def _with_named_index(df: pd.DataFrame) -> pd.DataFrame:
    """Named index levels are columns (``df.set_index("id")`` keeps its ids); unnamed are not."""
    named = [name for name in df.index.names if name is not None]
    if not named:
        return df
    frame = df.reset_index(level=named)
    if len(named) == df.index.nlevels:
        frame.index = df.index  # keep the labels for naming rows in errors
    return frame


def _from_index(unknown: list[t.Any], df: pd.DataFrame) -> str:
    if any(name in df.index.names for name in unknown):
        return " (from the frame's index; df.reset_index(drop=True) leaves it out)"
    return ""


def _fills_itself(column: sa.Column[t.Any], table: sa.Table) -> bool:
    """Whether a column left out of the frame gets a value anyway (or may be NULL)."""
    if column.nullable or column.server_default is not None or column.identity is not None:
        return True
    if column is table.autoincrement_column:
        return True
    return column.default is not None and not column.default.is_sequence


def _polymorphic_fill(
    mapper: sa.orm.Mapper[t.Any], table: sa.Table, given: dict[sa.Column[t.Any], t.Any]
) -> sa.Column[t.Any] | None:
    """Single-table inheritance: the discriminator column the ORM would fill."""
    column = mapper.polymorphic_on
    if isinstance(column, sa.Column) and column.table is table and column not in given:
        if mapper.polymorphic_identity is not None:
            return column
    return None


def _frame_source(
    series: pd.Series, convert: t.Callable[[pd.Series], list[t.Any]]
) -> t.Callable[[int, int], list[t.Any]]:
    def source(start: int, stop: int) -> list[t.Any]:
        return convert(series.iloc[start:stop])

    return source


def _constant_source(
    value: t.Any, column: sa.Column[t.Any], dialect: sa.Dialect
) -> t.Callable[[int, int], list[t.Any]]:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if value is not None and process is not None:
        value = process(value)

    def source(start: int, stop: int) -> list[t.Any]:
        return [value] * (stop - start)

    return source


def _default_source(column: sa.Column[t.Any], conn: sa.Connection) -> t.Callable[[int, int], list[t.Any]]:
    """Python-side ``default=``: a scalar, a SQL expression (evaluated once) or a callable (per row)."""
    default: t.Any = column.default
    assert default is not None
    dialect = conn.dialect
    if default.is_scalar:
        return _constant_source(default.arg, column, dialect)
    if default.is_clause_element:
        value = conn.execute(sa.select(default.arg)).scalar()
        return _constant_source(value, column, dialect)
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    make = default.arg

    def source(start: int, stop: int) -> list[t.Any]:
        try:
            values = [make(None) for _ in range(stop - start)]
        except Exception as e:
            raise InsertError(
                f"The default of {column.table.name}.{column.name} could not be computed"
                f" outside an ORM flush ({type(e).__name__}: {e}); give the column in the frame."
            ) from e
        if process is not None:
            values = [None if v is None else process(v) for v in values]
        return values

    return source


def _row(index: pd.Index, position: int) -> str:
    import pandas as pd

    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return f"Row {position}"
    return f"Row {position} (index {index[position]!r})"


def _columns(names: t.Sequence[t.Any]) -> str:
    """"column 'a'" or "columns 'a', 'b'"."""
    quoted = ", ".join(repr(n) for n in names)
    return f"column {quoted}" if len(names) == 1 else f"columns {quoted}"
