"""``wb.schema()``: the app's models as a diagram, from the models and the database's row counts.

Tables with their columns and types, primary and foreign keys, the relationships the models
declare with their cardinality (one-to-many, many-to-one, one-to-one, many-to-many), and how
many rows each table holds. In JupyterLab (4.1+) it is drawn as a Mermaid ``erDiagram``
(``text/vnd.mermaid``); front ends without Mermaid get an SVG drawing (JupyterLab ranks Mermaid
above SVG but below HTML, so the fallback must not be HTML), and ``str()`` is a text form.
:meth:`Schema.save` writes any of them to a file.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import MANYTOMANY, MANYTOONE, ONETOMANY

from ..errors import QueryError


@dataclasses.dataclass
class SchemaColumn:
    name: str
    type: str
    primary_key: bool
    foreign_key: str | None  # "users.id"
    nullable: bool


@dataclasses.dataclass
class SchemaTable:
    model: str
    table: str
    rows: int | None  # None: the table does not exist in the database yet
    columns: list[SchemaColumn]


@dataclasses.dataclass
class SchemaRelationship:
    parent: str  # the "one" side's model (both sides for many-to-many)
    child: str
    cardinality: str  # "one-to-many", "one-to-one", "many-to-many"
    optional: bool  # the child may have no parent (a nullable foreign key)
    names: list[str]  # the relationship attributes, "User.events", "Event.user"


class Schema:
    """The diagram of a set of models: ``tables`` and ``relationships``; displays itself."""

    def __init__(self, tables: list[SchemaTable], relationships: list[SchemaRelationship]) -> None:
        self.tables = tables
        self.relationships = relationships

    def mermaid(self) -> str:
        """The Mermaid ``erDiagram`` source."""
        lines = ["erDiagram"]
        for table in self.tables:
            lines.append(f"    {table.model} {{")
            for column in table.columns:
                keys = ",".join(k for k, on in (("PK", column.primary_key), ("FK", column.foreign_key)) if on)
                notes = [column.foreign_key] if column.foreign_key else []
                if column.primary_key and column is table.columns[0]:
                    notes.append("not in the database" if table.rows is None else f"{table.rows:,} rows")
                comment = f' "{"; ".join(notes)}"' if notes else ""
                lines.append(f"        {_word(column.type)} {_word(column.name)}{' ' + keys if keys else ''}{comment}")
            lines.append("    }")
        for rel in self.relationships:
            left = "}o" if rel.cardinality == "many-to-many" else ("|o" if rel.optional else "||")
            right = {"one-to-many": "o{", "one-to-one": "o|", "many-to-many": "o{"}[rel.cardinality]
            lines.append(f'    {rel.parent} {left}--{right} {rel.child} : "{" / ".join(rel.names)}"')
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        out = []
        for table in self.tables:
            rows = "not in the database" if table.rows is None else f"{table.rows:,} rows"
            out.append(f"{table.model} ({table.table}, {rows})")
            for c in table.columns:
                marks = [m for m, on in (("PK", c.primary_key), (f"FK -> {c.foreign_key}", c.foreign_key)) if on]
                marks += [] if c.nullable or c.primary_key else ["NOT NULL"]
                out.append(f"  {c.name}: {c.type}" + (f"  [{', '.join(marks)}]" if marks else ""))
        if self.relationships:
            out.append("Relationships")
            for rel in self.relationships:
                out.append(f"  {rel.parent} {rel.cardinality} {rel.child}: {', '.join(rel.names)}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return str(self)

    def html(self) -> str:
        """HTML tables, one per model, and the relationships as a list. (Not a ``_repr_html_``:
        IPython would add it to the display, and JupyterLab prefers HTML to Mermaid.)"""
        esc = html.escape
        parts = []
        for table in self.tables:
            rows = "not in the database" if table.rows is None else f"{table.rows:,} rows"
            body = "".join(
                f"<tr><td>{esc(c.name)}{' <b>PK</b>' if c.primary_key else ''}</td><td>{esc(c.type)}</td>"
                f"<td>{'→ ' + esc(c.foreign_key) if c.foreign_key else ''}</td></tr>"
                for c in table.columns
            )
            parts.append(
                f'<table style="display:inline-table;margin:4px;vertical-align:top"><thead><tr><th colspan="3">'
                f"{esc(table.model)} <small>({esc(table.table)}, {rows})</small></th></tr></thead>"
                f"<tbody>{body}</tbody></table>"
            )
        rels = "".join(
            f"<li>{esc(r.parent)} <i>{esc(r.cardinality)}</i> {esc(r.child)}: {esc(', '.join(r.names))}</li>"
            for r in self.relationships
        )
        return f"<div>{''.join(parts)}<ul>{rels}</ul></div>"

    def _repr_mimebundle_(self, include: t.Any = None, exclude: t.Any = None) -> dict[str, str]:
        return {"text/vnd.mermaid": self.mermaid(), "image/svg+xml": self.svg(), "text/plain": str(self)}

    def svg(self) -> str:
        """A plain SVG drawing: a box per table (columns, keys, rows), a line per relationship."""
        esc = html.escape
        width, line, gap, per_row = 280, 16, 40, 3
        boxes: dict[str, tuple[int, int, int]] = {}
        x = y = row_height = 0
        parts: list[str] = []
        for i, table in enumerate(self.tables):
            if i and i % per_row == 0:
                x, y, row_height = 0, y + row_height + gap, 0
            height = line * (len(table.columns) + 2)
            boxes[table.model] = (x + 10, y + 10, height)
            rows = "not in the database" if table.rows is None else f"{table.rows:,} rows"
            bx, by = x + 10, y + 10
            parts.append(f'<rect x="{bx}" y="{by}" width="{width}" height="{height}" fill="#fff" stroke="#555"/>')
            parts.append(f'<rect x="{bx}" y="{by}" width="{width}" height="{line + 4}" fill="#e8eef7" stroke="#555"/>')
            parts.append(
                f'<text x="{bx + 6}" y="{by + line}" font-weight="bold">{esc(table.model)}'
                f' <tspan font-weight="normal" fill="#555">({esc(table.table)}, {rows})</tspan></text>'
            )
            for j, c in enumerate(table.columns):
                keys = " ".join(k for k, on in (("PK", c.primary_key), ("FK", c.foreign_key)) if on)
                ty = by + line * (j + 2) + 2
                parts.append(f'<text x="{bx + 6}" y="{ty}">{esc(c.name)}</text>')
                parts.append(f'<text x="{bx + 130}" y="{ty}" fill="#555">{esc(c.type[:18])}</text>')
                parts.append(f'<text x="{bx + width - 6}" y="{ty}" text-anchor="end" fill="#a33">{keys}</text>')
            row_height = max(row_height, height)
            x += width + gap
        total_width = per_row * (width + gap) + 20
        lines_y = y + row_height + gap
        for k, rel in enumerate(self.relationships):
            (px, py, ph), (cx, cy, ch) = boxes[rel.parent], boxes[rel.child]
            parts.insert(0, (
                f'<line x1="{px + width / 2}" y1="{py + ph / 2}" x2="{cx + width / 2}" y2="{cy + ch / 2}"'
                ' stroke="#8aa" stroke-dasharray="4 3"/>'
            ))
            label = f"{rel.parent} {rel.cardinality} {rel.child}: {', '.join(rel.names)}"
            parts.append(f'<text x="10" y="{lines_y + line * k}">{esc(label)}</text>')
        total_height = lines_y + line * len(self.relationships) + 10
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{total_height}"'
            f' font-family="sans-serif" font-size="12">{"".join(parts)}</svg>'
        )

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the diagram to ``path``; the suffix says how: ``.mmd``/``.mermaid`` (Mermaid
        source), ``.md`` (Markdown with a mermaid block, which GitHub draws), ``.svg`` (the
        drawing), ``.html`` (tables) or ``.txt`` (the text form). Returns the path written."""
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        writers: dict[str, t.Callable[[], str]] = {
            ".mmd": self.mermaid,
            ".mermaid": self.mermaid,
            ".md": lambda: f"```mermaid\n{self.mermaid()}```\n",
            ".svg": self.svg,
            ".html": self.html,
            ".txt": lambda: str(self) + "\n",
        }
        if suffix not in writers:
            raise ValueError(
                f"Cannot save a schema as {suffix or 'a file without suffix'!r}; use one of {', '.join(writers)}."
            )
        with open(path, "w", encoding="utf-8") as f:
            f.write(writers[suffix]())
        return os.fspath(path)


def _word(text: str) -> str:
    """Mermaid attribute types and names are single words."""
    return re.sub(r"\W+", "_", text).strip("_") or "_"


def build_schema(
    registry: sa.orm.registry, engines: t.Mapping[str | None, sa.Engine], models: t.Iterable[t.Any] | None
) -> Schema:
    mappers = sorted(registry.mappers, key=lambda m: m.class_.__name__)
    if models is not None:
        wanted = {m if isinstance(m, str) else m.__name__ for m in models}
        unknown = wanted - {m.class_.__name__ for m in mappers}
        if unknown:
            names = ", ".join(m.class_.__name__ for m in mappers)
            raise QueryError(f"No model named {', '.join(sorted(unknown))}; the app's models are {names}.")
        mappers = [m for m in mappers if m.class_.__name__ in wanted]
    tables = [_table(mapper, engines) for mapper in mappers]
    shown = {m.class_ for m in mappers}
    return Schema(tables, _relationships(mappers, shown))


def _table(mapper: sa.orm.Mapper[t.Any], engines: t.Mapping[str | None, sa.Engine]) -> SchemaTable:
    table = t.cast(sa.Table, mapper.local_table)
    engine = engines.get(table.info.get("bind_key"), engines.get(None))
    rows: int | None = None
    if engine is not None:
        with engine.connect() as conn:
            if sa.inspect(conn).has_table(table.name, schema=table.schema):
                rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            conn.rollback()
    columns = []
    for column in table.columns:
        fks = sorted(f"{fk.column.table.name}.{fk.column.name}" for fk in column.foreign_keys)
        try:
            type_name = str(column.type.compile(engine.dialect if engine is not None else None))
        except sa.exc.CompileError:
            type_name = type(column.type).__name__
        foreign_key = ", ".join(fks) or None
        columns.append(SchemaColumn(column.name, type_name, column.primary_key, foreign_key, bool(column.nullable)))
    return SchemaTable(mapper.class_.__name__, table.name, rows, columns)


def _relationships(mappers: list[sa.orm.Mapper[t.Any]], shown: set[type]) -> list[SchemaRelationship]:
    """One entry per foreign-key link between shown models, named by both its attributes."""
    found: dict[tuple[t.Any, ...], SchemaRelationship] = {}
    for mapper in mappers:
        for rel in mapper.relationships:
            if rel.mapper.class_ not in shown:
                continue
            source, target = mapper.class_.__name__, rel.mapper.class_.__name__
            pairs = frozenset(frozenset((str(a), str(b))) for a, b in rel.local_remote_pairs)
            if rel.direction is MANYTOMANY:
                parent, child = sorted([source, target])
                cardinality, optional = "many-to-many", True
            else:
                parent, child = (target, source) if rel.direction is MANYTOONE else (source, target)
                # A one-to-many whose "many" side is a scalar (uselist=False) is one-to-one.
                cardinality = "one-to-one" if rel.direction is ONETOMANY and not rel.uselist else "one-to-many"
                fk_columns = [c for pair in rel.local_remote_pairs for c in pair if c.foreign_keys]
                optional = any(c.nullable for c in fk_columns)
            key = (parent, child, pairs)
            if key in found:
                found[key].names.append(f"{source}.{rel.key}")
                if cardinality == "one-to-one":
                    found[key].cardinality = cardinality
            else:
                found[key] = SchemaRelationship(parent, child, cardinality, optional, [f"{source}.{rel.key}"])
    return list(found.values())
