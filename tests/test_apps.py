"""The whole Workbench surface over each test app of tests/apps/, in a real Jupyter kernel.

One kernel per app and backend runs everything a notebook user would on day one:
``%load_ext analysis``, ``wb``, ``wb.tables()``, ``frame()`` of every model and table, a join,
``frames()``, ``export_csv`` / ``export_parquet`` read back with pandas, a refused write on every
bind, ``%connect --writable`` then a committed write, a ``%connect`` with a typo after which
the old Workbench still answers, ``wb.close()`` then ``repr(wb)``, and kernel shutdown leaving
no PostgreSQL connection. Every check runs even when an earlier one failed, and the test
reports all that failed, so one run shows the state of an app.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import time
import typing as t
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from kernels import Kernel, _strip_ansi
from testing_apps import BINDS, SCHEMAS, SHOP, VAULT, ZOO, AppCase, PreparedApp, prepared, read_csv_like, spelled
from testing_backends import pg_admin_connection

pytestmark = pytest.mark.slow

_FSA_VERSION = tuple(int(part) for part in version("flask-sqlalchemy").split(".")[:2])


class Checks:
    """Runs every check, records what failed, and fails the test once at the end with all of it."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    @contextlib.contextmanager
    def check(self, what: str) -> t.Iterator[None]:
        try:
            yield
        except Exception as e:  # every failed check is reported, none stops the others
            text = _strip_ansi(str(e)).strip()
            lines = text.splitlines()
            if len(lines) > 12:
                text = "\n".join(lines[:12] + ["..."])
            self.failures.append(f"{what}: {type(e).__name__}: {text}")

    def report(self) -> None:
        if self.failures:
            pytest.fail(f"{len(self.failures)} checks failed:\n- " + "\n- ".join(self.failures), pytrace=False)


# -- the apps, one test each ------------------------------------------------------------------


def test_shop_in_a_kernel(backend, database_url, tmp_path):
    run_surface(SHOP, backend, database_url, tmp_path)


@pytest.mark.skipif(
    _FSA_VERSION < (3, 1),
    reason=f"apps.zoo uses a DeclarativeBase model_class, which needs Flask-SQLAlchemy 3.1 (found {version('flask-sqlalchemy')})",
)
def test_zoo_in_a_kernel(backend, database_url, tmp_path):
    run_surface(ZOO, backend, database_url, tmp_path, extra=_zoo_factory_arguments)


def test_vault_in_a_kernel(backend, database_url, tmp_path):
    run_surface(VAULT, backend, database_url, tmp_path)


def test_binds_in_a_kernel(backend, database_url, tmp_path):
    run_surface(BINDS, backend, database_url, tmp_path, extra=_query_across_binds)


@pytest.mark.backends("postgresql", "mysql")
def test_schemas_in_a_kernel(backend, database_url, tmp_path):
    run_surface(SCHEMAS, backend, database_url, tmp_path)


# -- the surface ------------------------------------------------------------------------------

KERNEL_HELPERS = '''
import pickle as _pickle
import sys as _sys
import sqlalchemy as _sa
import analysis

def _dump(obj, path):
    with open(path, "wb") as f:
        _pickle.dump(obj, f)

def _failure(e):
    return f"{type(e).__name__}: {e}"

def _orm_rows(model):
    mapper = _sa.inspect(model)
    keys = [p.key for p in mapper.column_attrs]
    pk = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    objects = db.session.execute(db.select(model).order_by(*mapper.primary_key)).scalars().all()
    return keys, pk, [[getattr(o, k) for k in keys] for o in objects]

def _table_rows(bind, name):
    table = db.metadatas[bind].tables[name]
    with db.engines[bind].connect() as conn:
        rows = [list(row) for row in conn.execute(_sa.select(table).order_by(*table.primary_key))]
    return [c.key for c in table.c], [c.key for c in table.primary_key], rows

def _targets(tables):
    """name -> (what to pass to frame(), the ORM's or the table's own rows)."""
    found = {}
    for name, model in wb.models.items():
        found[name] = (model, lambda model=model: _orm_rows(model))
    for name, bind in tables:
        found[name] = (db.metadatas[bind].tables[name], lambda bind=bind, name=name: _table_rows(bind, name))
    return found

def _read_everything(tables):
    out = {}
    for name, (target, expected) in _targets(tables).items():
        entry = out[name] = {}
        for key, read in (
            ("expected", expected),
            ("frame", lambda: wb.frame(target)),
            ("chunks", lambda: list(wb.frames(target, chunksize=2))),
            # excel_safe=False: the values as they are (excel_safe is the default, tested elsewhere).
            ("csv", lambda: wb.export_csv(target, f"{name}.csv", excel_safe=False, progress=False).route),
            ("parquet", lambda: wb.export_parquet(target, f"{name}.parquet", progress=False).route),
        ):
            try:
                entry[key] = read()
            except Exception as e:
                entry[key + "_error"] = _failure(e)
    return out
'''


def run_surface(
    case: AppCase,
    backend: str,
    database_url: str,
    tmp_path: Path,
    extra: t.Callable[[Kernel, PreparedApp, Checks], None] | None = None,
) -> None:
    checks = Checks()
    with prepared(case, backend, database_url, tmp_path) as app:
        counts = {key: app.count(key) for key in case.tables}
        kernel = Kernel(tmp_path, app.env)
        try:
            loaded = kernel.run("%load_ext analysis")
            if loaded.error is not None:
                pytest.fail(f"%load_ext analysis raised {loaded.error['ename']}: {loaded.error['evalue']}")
            kernel.ok(KERNEL_HELPERS)
            _check_repr(kernel, app, checks)
            _check_tables(kernel, app, counts, tmp_path, checks)
            _check_reads_and_exports(kernel, app, tmp_path, checks)
            _check_join(kernel, app, tmp_path, checks)
            _check_refused_writes(kernel, app, counts, checks)
            _check_writable_switch(kernel, app, counts, checks)
            _check_typo_keeps_the_workbench(kernel, app, counts, checks)
            if extra is not None:
                extra(kernel, app, checks)
            _check_close_and_repr(kernel, checks)
            _check_shutdown_leaves_no_connection(kernel, app, checks)
        finally:
            kernel.close()
    checks.report()


def _check_repr(kernel: Kernel, app: PreparedApp, checks: Checks) -> None:
    with checks.check("wb shows every database, passwords masked"):
        shown = kernel.ok("wb")
        text = shown.text
        html = "".join(r.get("text/html", "") for r in shown.results)
        for url in app.urls.values():
            masked = sa.make_url(url).render_as_string(hide_password=True)
            assert masked in text, f"{masked!r} not in {text!r}"
            assert html == "" or masked in html, f"{masked!r} not in the HTML repr"
        assert "s3cret" not in text + html
        assert "read-only" in text


def _check_tables(kernel: Kernel, app: PreparedApp, counts: dict[str, int], folder: Path, checks: Checks) -> None:
    with checks.check("wb.tables()"):
        kernel.ok("_dump(wb.tables(), 'tables.pkl')")
        tables = pd.read_pickle(folder / "tables.pkl")
        assert {"table", "model", "bind", "rows", "columns"} <= set(tables.columns), list(tables.columns)
        shown = {
            (row.table, None if row.bind is None or row.bind == "" else row.bind): row
            for row in tables.itertuples()
        }
        expected = {(app.table_name(key), spec.bind): (key, spec) for key, spec in app.case.tables.items()}
        assert set(shown) == set(expected)
        for where, (key, spec) in expected.items():
            row = shown[where]
            assert row.model == spec.model, f"{where}: model {row.model!r}, expected {spec.model!r}"
            assert row.columns == spec.columns, f"{where}: columns {row.columns!r}, expected {spec.columns!r}"
            assert row.rows == counts[key], f"{where}: {row.rows} rows, expected {counts[key]}"


def _model_less(app: PreparedApp) -> list[tuple[str, str | None]]:
    return [(app.table_name(key), spec.bind) for key, spec in app.case.tables.items() if spec.model == ""]


def _check_reads_and_exports(kernel: Kernel, app: PreparedApp, folder: Path, checks: Checks) -> None:
    with checks.check("reading every model and table"):
        kernel.ok(f"_dump(_read_everything({_model_less(app)!r}), 'reads.pkl')", timeout=180)
    reads = pickle.loads((folder / "reads.pkl").read_bytes()) if (folder / "reads.pkl").exists() else {}
    expected_names = set(kernel.value("sorted(wb.models)")) | {name for name, _ in _model_less(app)}
    with checks.check("frame() of every model and table"):
        assert set(reads) == expected_names
    for name, entry in sorted(reads.items()):
        with checks.check(f"frame({name})"):
            assert "frame_error" not in entry, entry.get("frame_error")
            keys, pk, rows = entry["expected"]
            frame = entry["frame"]
            assert list(frame.columns) == keys
            assert frame_rows(frame, pk) == rows
        with checks.check(f"frames({name})"):
            assert "chunks_error" not in entry, entry.get("chunks_error")
            assert all(len(chunk) <= 2 for chunk in entry["chunks"])
            pd.testing.assert_frame_equal(
                by_key(pd.concat(entry["chunks"], ignore_index=True), entry["expected"][1]),
                by_key(entry["frame"], entry["expected"][1]),
            )
        if "frame" not in entry:
            continue
        pk = entry["expected"][1]
        with checks.check(f"export_csv({name}) read back"):
            assert "csv_error" not in entry, entry.get("csv_error")
            frame = entry["frame"]
            back = read_csv_like(folder / f"{name}.csv", frame)
            assert list(back.columns) == list(frame.columns)
            compare_files_frame(back, frame, pk)
        with checks.check(f"export_parquet({name}) read back"):
            assert "parquet_error" not in entry, entry.get("parquet_error")
            compare_files_frame(pd.read_parquet(folder / f"{name}.parquet"), entry["frame"], pk, decimals_as_objects=True)


def _check_join(kernel: Kernel, app: PreparedApp, folder: Path, checks: Checks) -> None:
    with checks.check("frame() of a join"):
        kernel.ok(app.case.join)
        kernel.ok("_dump({'frame': wb.frame(stmt), 'rows': [list(r) for r in db.session.execute(stmt)]}, 'join.pkl')")
        joined = pickle.loads((folder / "join.pkl").read_bytes())
        assert len(joined["rows"]) > 0
        assert sorted(frame_rows(joined["frame"], []), key=repr) == sorted(joined["rows"], key=repr)


def _check_refused_writes(kernel: Kernel, app: PreparedApp, counts: dict[str, int], checks: Checks) -> None:
    for bind, (key, code) in app.case.writes.items():
        with checks.check(f"read-only: an ORM write on bind {bind!r} is refused"):
            refused = kernel.run(code + "\ndb.session.commit()")
            assert refused.error is not None and refused.error["ename"] == "ReadOnlyError", refused.error
            kernel.ok("db.session.rollback()")
        with checks.check(f"read-only: a SQL write on bind {bind!r} is refused"):
            name = app.table_name(key)
            refused = kernel.run(
                f"_t = db.metadatas[{bind!r}].tables[{name!r}]\n"
                f"db.session.execute(_t.delete(), bind_arguments={{'bind': db.engines[{bind!r}]}})"
            )
            assert refused.error is not None and refused.error["ename"] == "ReadOnlyError", refused.error
            kernel.ok("db.session.rollback()")
    with checks.check("read-only: nothing was written"):
        assert {key: app.count(key) for key in counts} == counts


def _check_writable_switch(kernel: Kernel, app: PreparedApp, counts: dict[str, int], checks: Checks) -> None:
    kernel.ok("_app_before = wb.app")
    with checks.check("%connect --writable switches mode on the same app"):
        kernel.ok("%connect --writable")
        assert kernel.value("(wb.app is _app_before, wb.mode, analysis.current() is wb)") == (True, "writable", True)
    if kernel.value("wb.mode") != "writable":
        return
    for bind, (key, code) in app.case.writes.items():
        with checks.check(f"writable: a pending write on bind {bind!r} is seen by frame()"):
            kernel.ok(code)
            name = app.table_name(key)
            assert kernel.value(f"len(wb.frame(db.metadatas[{bind!r}].tables[{name!r}]))") == counts[key] + 1
    with checks.check("a mode switch with pending writes is refused and keeps them"):
        refused = kernel.run("%connect --read-only")
        assert refused.error is not None and refused.error["ename"] == "UsageError", refused.error
        assert "commit" in refused.error["evalue"] and "rollback" in refused.error["evalue"]
        assert kernel.value("(wb.mode, analysis.current() is wb)") == ("writable", True)
        assert kernel.value("len(wb.pending_changes())") > 0
        for bind, (key, _) in app.case.writes.items():
            name = app.table_name(key)
            assert kernel.value(f"len(wb.frame(db.metadatas[{bind!r}].tables[{name!r}]))") == counts[key] + 1
    with checks.check("writable: the commit is visible to another process"):
        kernel.ok("db.session.commit()")
        for key, _ in app.case.writes.values():
            assert app.count(key) == counts[key] + 1, key
            counts[key] += 1
    with checks.check("%connect --read-only switches back on the same app"):
        kernel.ok("%connect --read-only")
        assert kernel.value("(wb.app is _app_before, wb.mode)") == (True, "read-only")
    with checks.check("analysis.connect(app, writable=...) on the same app switches mode"):
        assert kernel.value(
            "_w = analysis.connect(app, writable=True)\n(_w.app is _app_before, _w.mode, analysis.current() is _w)"
        ) == (True, "writable", True)
        assert kernel.value("_w = analysis.connect(app)\n(_w.app is _app_before, _w.mode)") == (True, "read-only")
    kernel.ok("wb = analysis.current()")


def _check_typo_keeps_the_workbench(kernel: Kernel, app: PreparedApp, counts: dict[str, int], checks: Checks) -> None:
    spec, hint = app.case.typo
    first = next(iter(app.case.writes.values()))[0]
    with checks.check("%connect with a typo says what is wrong and keeps its cause"):
        failed = kernel.run(f"%connect {spec}")
        assert failed.error is not None and failed.error["ename"] == "UsageError", failed.error
        assert hint in failed.error["evalue"], failed.error["evalue"]
        assert kernel.value("type(_sys.last_value.__cause__).__name__") == "AppNotFoundError"
    with checks.check("after a failed %connect the old Workbench still answers"):
        assert kernel.value("(analysis.current() is wb, wb.closed, wb.app is _app_before)") == (True, False, True)
        name = app.table_name(first)
        bind = app.case.tables[first].bind
        assert kernel.value(f"len(wb.frame(db.metadatas[{bind!r}].tables[{name!r}]))") == counts[first]


def _check_close_and_repr(kernel: Kernel, checks: Checks) -> None:
    with checks.check("repr of a closed Workbench says it is closed"):
        kernel.ok("wb.close()")
        assert "closed" in kernel.ok("repr(wb)").text
        assert kernel.value("'closed' in wb._repr_html_()") is True
        shown = kernel.ok("wb")
        assert "closed" in shown.text


def _check_shutdown_leaves_no_connection(kernel: Kernel, app: PreparedApp, checks: Checks) -> None:
    with checks.check("reconnecting the same app after close()"):
        kernel.ok("wb = analysis.connect(app)")
        for bind in app.case.binds:
            kernel.ok(f"wb.frame(next(iter(db.metadatas[{bind!r}].tables.values())))")
    if app.backend != "postgresql":
        return
    with checks.check("kernel shutdown leaves no PostgreSQL connection"):
        pid = kernel.pid
        assert kernel_pg_connections(pid), "the kernel should hold pooled connections before shutdown"
        started = time.monotonic()
        kernel.shutdown()
        while kernel_pg_connections(pid):
            assert time.monotonic() - started < 2.5, f"still open: {kernel_pg_connections(pid)}"
            time.sleep(0.05)


def kernel_pg_connections(pid: int) -> list[tuple[str, str]]:
    """``(application_name, state)`` of the connections the kernel process ``pid`` opened."""
    with pg_admin_connection() as admin:
        rows = admin.execute(
            "SELECT application_name, state FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"%pid={pid}%",),
        ).fetchall()
    return sorted(rows)


# -- app-specific checks ------------------------------------------------------------------------


def _zoo_factory_arguments(kernel: Kernel, app: PreparedApp, checks: Checks) -> None:
    with checks.check("%connect parses factory arguments as flask --app does (quotes optional)"):
        kernel.ok("%connect apps.zoo:create_app('testing')")
        assert kernel.value("(wb.app.config['TESTING'], wb.app is not _app_before)") == (True, True)
        kernel.ok("%connect \"apps.zoo:create_app('default')\"")
        assert kernel.value("wb.app.config['TESTING']") is False
        kernel.ok("_app_before = wb.app")
    with checks.check("a %connect whose factory raises keeps the old Workbench and the cause"):
        failed = kernel.run("%connect apps.zoo:create_app('nope')")
        assert failed.error is not None and failed.error["ename"] == "UsageError", failed.error
        assert "KeyError" in failed.error["evalue"]
        assert kernel.value("type(_sys.last_value.__cause__).__name__") == "AppFactoryError"
        assert kernel.value("(analysis.current() is wb, wb.closed)") == (True, False)
        assert kernel.value("len(wb.frame(Animal))") == app.count("animals")


def _query_across_binds(kernel: Kernel, app: PreparedApp, checks: Checks) -> None:
    with checks.check("a query spanning two binds is a clear error"):
        failed = kernel.run(
            "wb.frame(db.select(Product.name, Shipment.quantity).join(Shipment, Shipment.product_id == Product.id))"
        )
        assert failed.error is not None and failed.error["ename"] == "QueryError", failed.error
        assert "warehouse" in failed.error["evalue"] and "default" in failed.error["evalue"]


# -- comparing ------------------------------------------------------------------------------


def python_value(value: t.Any) -> t.Any:
    """A DataFrame cell as the plain Python value the ORM would give."""
    import numpy as np

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def frame_rows(frame: pd.DataFrame, key: list[str]) -> list[list[t.Any]]:
    """The rows of ``frame`` as lists of Python values, ordered by the ``key`` columns."""
    rows = [[python_value(v) for v in row] for row in zip(*(frame[c].tolist() for c in frame.columns), strict=True)]
    positions = [list(frame.columns).index(k) for k in key]
    return sorted(rows, key=lambda row: [row[i] for i in positions]) if positions else rows


def by_key(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame.sort_values(key).reset_index(drop=True) if key else frame.reset_index(drop=True)


def compare_files_frame(back: pd.DataFrame, frame: pd.DataFrame, key: list[str], *, decimals_as_objects: bool = False) -> None:
    """A file read back equals ``frame``: dtypes and values, object columns as spelled.

    ``decimals_as_objects``: exact decimals may come back as Decimal objects (what
    ``pd.read_parquet`` gives: pandas cannot name an Arrow decimal dtype in a file's metadata).
    """
    import pyarrow as pa

    back, frame = by_key(back, key), by_key(frame, key)
    assert list(back.columns) == list(frame.columns)
    if decimals_as_objects:
        for c in frame.columns:
            kind = frame[c].dtype
            if isinstance(kind, pd.ArrowDtype) and pa.types.is_decimal(kind.pyarrow_dtype):
                assert pd.api.types.is_object_dtype(back[c].dtype), (c, back[c].dtype)
                assert [python_value(v) for v in back[c]] == [python_value(v) for v in frame[c]], c
                back, frame = back.drop(columns=[c]), frame.drop(columns=[c])
    objects = [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c].dtype)]
    for column in objects:
        assert [python_value(v) for v in back[column]] == [spelled(v) for v in frame[column]], column
    pd.testing.assert_frame_equal(back.drop(columns=objects), frame.drop(columns=objects), check_dtype=True)
