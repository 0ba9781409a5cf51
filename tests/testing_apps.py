"""The test apps of tests/apps/ on private databases, and how to read their files back.

:func:`prepared` gives an app its private database namespaces (as ``database_url`` does for
my_app: a SQLite file, a PostgreSQL schema, a MariaDB database), passes their URLs through the
environment the app reads, and seeds them by running the app's own ``flask seed`` command in a
child process. A child process, because some of these apps can be built only once per process
(``apps.shop``) or build their app when imported (``apps.vault``): the test process never
imports them.

:func:`read_csv_like` reads an exported CSV back the way the README tells pandas users to, and
:func:`spelled` is how the README says the CSV (and Parquet) spell values that are Python
objects (a ``PickleType``'s dicts and lists).
"""

from __future__ import annotations

import contextlib
import dataclasses
import decimal
import json
import subprocess
import sys
import typing as t
from pathlib import Path

import sqlalchemy as sa
from testing_backends import throwaway_database

TESTS = Path(__file__).resolve().parent
#: A password in every PostgreSQL URL (trust authentication ignores it), so that a repr that
#: shows it is caught.
PG_PASSWORD = "s3cret-pw"


@dataclasses.dataclass(frozen=True)
class Table:
    """What ``wb.tables()`` should say about one table."""

    model: str  # "" for a table with no model (an association table)
    columns: str  # as tables() lists them: attribute names, "attr (column)" where they differ
    bind: str | None = None
    schema: str | None = None  # "archive" for the schemas app's archive schema


@dataclasses.dataclass(frozen=True)
class AppCase:
    """One test app and what to do with it in a notebook."""

    name: str
    flask_app: str  # FLASK_APP, in `flask --app` notation
    prefix: str  # the app's from_prefixed_env prefix
    tables: dict[str, Table]
    #: Code that assigns ``stmt``, a select() joining two tables, in the notebook's namespace.
    join: str
    #: Per bind key: the table a write goes to, and code that adds one new object to
    #: ``db.session`` there (not committed).
    writes: dict[str | None, tuple[str, str]]
    #: A ``%connect`` argument with a typo, and what the error must say about it.
    typo: tuple[str, str]
    #: The app declares its models on a DeclarativeBase: Flask-SQLAlchemy 3.1 or later.
    needs_declarative_base: bool = False

    @property
    def binds(self) -> list[str | None]:
        return sorted({table.bind for table in self.tables.values()}, key=lambda b: (b is not None, b or ""))


SHOP = AppCase(
    name="shop",
    flask_app="apps.shop:create_app",
    prefix="SHOP",
    tables={
        "customers": Table("Customer", "id, email, _password (password)"),
        "order": Table("Order", "id, customer_id, placed_at, status"),
        "order_lines": Table("OrderLine", "order_id, line_no, product_id, quantity, price"),
        "ProductCatalog": Table("Product", "id, sku (SKU), name"),
        "tags": Table("Tag", "id, name"),
        "product_tags": Table("", "product_id, tag_id"),
        "audit_log": Table("", "id, action, logged_at"),
    },
    join=(
        "stmt = db.select(Customer.email, Order.status, OrderLine.line_no, Product.sku, OrderLine.price)"
        ".join(Order.customer).join(Order.lines).join(Product, OrderLine.product_id == Product.id)"
    ),
    writes={None: ("tags", "db.session.add(Tag(id=100, name='fresh'))")},
    typo=("apps.shop:create_ap", "Did you mean 'create_app'?"),
)

ZOO = AppCase(
    name="zoo",
    flask_app="apps.zoo:create_app",
    prefix="ZOO",
    tables={
        "animals": Table("Animal", "id, name, kind, born, keeper_id, good_boy, lives"),
        "employees": Table("Employee", "id, name, type, hired_at"),
        "keepers": Table("Keeper", "id, enclosure"),
        "vets": Table("Vet", "id, licence"),
    },
    join="stmt = db.select(Animal.name, Animal.kind, Keeper.name.label('keeper'), Keeper.enclosure).join(Animal.keeper)",
    writes={None: ("animals", "db.session.add(Cat(id=100, name='Kit', lives=7))")},
    typo=("apps.zo:create_app", "Cannot import 'apps.zo'"),
    needs_declarative_base=True,
)

VAULT = AppCase(
    name="vault",
    flask_app="apps.vault",
    prefix="VAULT",
    tables={"secrets": Table("Secret", "id, label, note, payload, stored_at")},
    join=(
        "other = db.aliased(Secret)\n"
        "stmt = db.select(Secret.label, Secret.note, other.payload.label('next_payload'))"
        ".join(other, other.id == Secret.id + 1)"
    ),
    writes={
        None: (
            "secrets",
            "import datetime as _dt\n"
            "db.session.add(Secret(id=100, label='new', note='new note', payload={'k': [1]},"
            " stored_at=_dt.datetime(2026, 3, 1)))",
        )
    },
    typo=("apps.vaults", "Cannot import 'apps.vaults'"),
)

BINDS = AppCase(
    name="binds",
    flask_app="apps.binds:create_app",
    prefix="BINDS",
    tables={
        "products": Table("Product", "id, name, price, active"),
        "notes": Table("Note", "id, text"),
        "shipments": Table("Shipment", "id, product_id, quantity, shipped_at", bind="warehouse"),
        "stock": Table("", "product_id, on_hand, counted_at", bind="warehouse"),
        "warehouse.notes": Table("WarehouseNote", "id, text, urgent", bind="warehouse"),
    },
    join=(
        "stock = db.metadatas['warehouse'].tables['stock']\n"
        "stmt = db.select(Shipment.id, Shipment.quantity, stock.c.on_hand).join(stock, stock.c.product_id == Shipment.product_id)"
    ),
    writes={
        None: ("notes", "db.session.add(Note(id=100, text='on the catalogue'))"),
        "warehouse": ("shipments", "db.session.add(Shipment(id=100, product_id=2, quantity=3))"),
    },
    typo=("apps.binds:create_appp", "Did you mean 'create_app'?"),
)

SCHEMAS = AppCase(
    name="schemas",
    flask_app="apps.schemas:create_app",
    prefix="SCHEMAS",
    tables={
        "invoices": Table("Invoice", "id, number, total, issued_on"),
        "archived_invoices": Table("ArchivedInvoice", "id, invoice_id, archived_at, reason", schema="archive"),
    },
    join="stmt = db.select(Invoice.number, Invoice.total, ArchivedInvoice.archived_at).join(ArchivedInvoice, ArchivedInvoice.invoice_id == Invoice.id)",
    writes={
        None: (
            "archived_invoices",
            "import datetime as _dt\n"
            "db.session.add(ArchivedInvoice(id=100, invoice_id=3, archived_at=_dt.datetime(2026, 4, 1)))",
        )
    },
    typo=("apps.schemas:createapp", "Did you mean 'create_app'?"),
)

CASES = {case.name: case for case in (SHOP, ZOO, VAULT, BINDS, SCHEMAS)}


@dataclasses.dataclass
class PreparedApp:
    """A test app seeded on private databases: the environment that points it there."""

    case: AppCase
    backend: str
    env: dict[str, str]
    urls: dict[str | None, str]  # bind key -> URL
    archive_schema: str | None = None

    def table_name(self, key: str) -> str:
        """The key of ``key`` in tables(): schema-qualified for the archive schema."""
        table = self.case.tables[key]
        if table.schema == "archive":
            return f"{self.archive_schema}.{key}"
        return key.rpartition(".")[2] if table.bind is not None else key

    def count(self, key: str) -> int:
        """Rows in a table, on a fresh engine: what another process sees."""
        table = self.case.tables[key]
        schema = self.archive_schema if table.schema == "archive" else None
        name = key.rpartition(".")[2]
        return outside_scalar(self.urls[table.bind], sa.select(sa.func.count()).select_from(sa.table(name, schema=schema)))


def outside_scalar(url: str, statement: sa.Executable) -> t.Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(statement).scalar_one()
    finally:
        engine.dispose()


def with_password(url: str) -> str:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(password=PG_PASSWORD)
    return parsed.render_as_string(hide_password=False)


def namespace_of(url: str) -> str:
    """The PostgreSQL schema (search_path) or MariaDB database a throwaway URL points at."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return str(parsed.query["options"]).rpartition("=")[2]
    return str(parsed.database)


@contextlib.contextmanager
def prepared(case: AppCase, backend: str, database_url: str, tmp_path: Path) -> t.Iterator[PreparedApp]:
    """``case`` seeded on private databases of ``backend``; ``database_url`` is the first.

    The binds app keeps its default database in a SQLite file and puts the ``warehouse`` bind
    on ``backend``, so a run on PostgreSQL has a SQLite and a PostgreSQL database at once.
    """
    with contextlib.ExitStack() as stack:
        env = {"PYTHONPATH": _pythonpath(), "FLASK_APP": case.flask_app}
        urls: dict[str | None, str] = {}
        archive = None
        if case is BINDS:
            folder = tmp_path / "catalogue"
            folder.mkdir()
            urls[None] = f"sqlite:///{folder / 'catalogue.sqlite'}"
            urls["warehouse"] = with_password(database_url)
            env[f"{case.prefix}_SQLALCHEMY_BINDS__warehouse"] = urls["warehouse"]
        else:
            urls[None] = with_password(database_url)
        if case is SCHEMAS:
            folder = tmp_path / "archive"
            folder.mkdir()
            archive = namespace_of(stack.enter_context(throwaway_database(backend, folder)))
            env["SCHEMAS_ARCHIVE_SCHEMA"] = archive
        env[f"{case.prefix}_SQLALCHEMY_DATABASE_URI"] = urls[None]
        run_flask(env, "seed", cwd=tmp_path)
        yield PreparedApp(case, backend, env, urls, archive)


def run_flask(env: t.Mapping[str, str], *args: str, cwd: Path) -> str:
    """``flask <args>`` in a child process with ``env`` (and FLASK_APP from it)."""
    from kernels import kernel_environment

    result = subprocess.run(
        [sys.executable, "-m", "flask", *args], env=kernel_environment(env), cwd=cwd,
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _pythonpath() -> str:
    import os

    return os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)


# -- reading exports back, as the README tells pandas users to -------------------------------


def spelled(value: t.Any) -> t.Any:
    """How the CSV and Parquet files spell a Python object that is not a scalar type of theirs:
    dicts and lists as JSON text; ``None`` stays missing."""
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def read_csv_like(path: Path, like: t.Any) -> t.Any:
    """Read the CSV at ``path`` as the README says, into the dtypes of the DataFrame ``like``.

    Object columns (values processed in Python) come back as the text the README gives them,
    so compare them with ``like``'s values passed through :func:`spelled`.
    """
    import pandas as pd
    import pyarrow as pa

    header = pd.read_csv(path, nrows=0).columns.tolist()
    dtype: dict[str, t.Any] = {}
    converters: dict[str, t.Any] = {}
    for name in header:
        kind = like[name].dtype
        if isinstance(kind, pd.ArrowDtype) and pa.types.is_decimal(kind.pyarrow_dtype):
            converters[name] = lambda text: decimal.Decimal(text) if text else None
        elif pd.api.types.is_datetime64_any_dtype(kind) or isinstance(kind, pd.ArrowDtype):
            dtype[name] = "string"
        elif pd.api.types.is_object_dtype(kind):
            dtype[name] = "object"
        else:
            dtype[name] = kind
    frame = pd.read_csv(path, dtype=dtype, converters=converters)
    for name in header:
        kind = like[name].dtype
        if pd.api.types.is_datetime64_any_dtype(kind):
            utc = getattr(kind, "tz", None) is not None
            frame[name] = pd.to_datetime(frame[name], format="ISO8601", utc=utc).astype(kind)
        elif isinstance(kind, pd.ArrowDtype) and pa.types.is_date(kind.pyarrow_dtype):
            frame[name] = pd.to_datetime(frame[name], format="ISO8601").dt.date.astype(kind)
        elif isinstance(kind, pd.ArrowDtype):
            frame[name] = frame[name].astype(kind)
        elif pd.api.types.is_object_dtype(kind):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame
