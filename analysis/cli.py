"""``flask export`` and ``flask report``: files for analysts from the command line.

They are registered for every Flask app through the ``flask.commands`` entry point (see
``pyproject.toml``), so ``flask --app my_app export users.csv --model User`` finds the app the
way every ``flask`` command does, and the host app never imports this toolkit.

Both commands are read-only (the database refuses writes for their connections), show a
progress bar on stderr when it is a terminal, end with a one-line summary on stderr, and on
failure print one line saying what went wrong, exit with status 1, and leave no output file
(an earlier file at that path is kept as it was).
"""

from __future__ import annotations

import functools
import sys
import typing as t
from pathlib import Path

import click
from flask.cli import ScriptInfo, pass_script_info

from .errors import AnalysisError, QueryError, first_line

if t.TYPE_CHECKING:
    from .export import ExportResult
    from .workbench import Workbench

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

_PARAM_HELP = "A query or report parameter, NAME=VALUE; repeat for several."


def errors_as_one_line(f: F) -> F:
    """Turn the toolkit's errors into ``Error: <one line>`` and exit status 1."""

    @functools.wraps(f)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return f(*args, **kwargs)
        except AnalysisError as e:
            raise click.ClickException(first_line(e, sentence=True)) from e
        except KeyboardInterrupt:
            click.echo("Interrupted; no file was written.", err=True)
            sys.exit(130)

    return t.cast(F, wrapper)


def _open_workbench(info: ScriptInfo, purpose: str) -> Workbench:
    from .workbench import Workbench, default_application_name

    app = info.load_app()
    workbench = Workbench(
        app,
        writable=False,
        application_name=default_application_name(app, purpose),
    )
    workbench.open()
    return workbench


def _params(assignments: t.Sequence[str]) -> dict[str, str]:
    from .reports import parse_assignment

    params: dict[str, str] = {}
    for text in assignments:
        name, value = parse_assignment(text)
        params[name] = value
    return params


def _summary(result: ExportResult) -> None:
    click.echo(result.summary(), err=True)


@click.command("export")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--model", "model_name", metavar="NAME", help="Export every row of this model (class name).")
@click.option("--table", "table_name", metavar="NAME", help="Export every row of this table.")
@click.option("--sql", metavar="SELECT", help="Export the rows of this SQL query (use :name parameters).")
@click.option("--param", "param_list", multiple=True, metavar="NAME=VALUE", help=_PARAM_HELP)
@click.option("--excel-safe/--no-excel-safe", default=True, show_default=True,
              help="Neutralise text cells that a spreadsheet would run as formulas (CSV).")
@click.option("--encoding", default="utf-8", show_default=True, help="CSV encoding; utf-8-sig adds a BOM for Excel.")
@click.option("--chunksize", type=click.IntRange(min=1), default=None, help="Rows per batch.")
@click.option("--partition-by", "partition_by", multiple=True, metavar="COLUMN",
              help="Write a hive-partitioned Parquet directory at PATH, a level per column (repeat or comma-separate).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: if a terminal].")
@pass_script_info
@errors_as_one_line
def export_command(
    info: ScriptInfo,
    path: Path,
    model_name: str | None,
    table_name: str | None,
    sql: str | None,
    param_list: tuple[str, ...],
    excel_safe: bool,
    encoding: str,
    chunksize: int | None,
    partition_by: tuple[str, ...],
    progress: bool | None,
) -> None:
    """Export a model, a table or a SQL query to PATH (.csv, .csv.gz, .csv.zip, .parquet), or
    with --partition-by to a directory of Parquet files.

    \b
    flask --app my_app export users.csv --model User
    flask --app my_app export events.parquet --table events
    flask --app my_app export events/ --table events --partition-by kind
    flask --app my_app export de.csv --sql "SELECT * FROM users WHERE country = :c" --param c=DE
    """
    from .export.files import output_format

    chosen = [name for name, value in (("--model", model_name), ("--table", table_name), ("--sql", sql)) if value]
    if len(chosen) != 1:
        what = "none" if not chosen else " and ".join(chosen)
        raise click.ClickException(f"Say what to export with exactly one of --model, --table or --sql (got {what}).")
    params = _params(param_list)
    if params and sql is None:
        raise click.ClickException("--param only applies to --sql queries (with :name placeholders).")
    columns = [c.strip() for text in partition_by for c in text.split(",") if c.strip()]
    fmt = "parquet" if columns else output_format(path)

    workbench = _open_workbench(info, "export")
    try:
        if model_name is not None:
            query: t.Any = find_model(workbench, model_name)
        elif table_name is not None:
            query = find_table(workbench, table_name)
        else:
            query = sql
        if columns:
            show = sys.stderr.isatty() if progress is None else progress
            result = workbench.export_parquet(
                query, path, params=params or None, chunksize=chunksize, progress=show, partition_by=columns
            )
        else:
            result = _write(workbench, query, path, fmt, params or None, chunksize, excel_safe, encoding, progress)
    finally:
        workbench.close()
    _summary(result)


@click.command("report")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write to this file (.csv, .csv.gz, .csv.zip, .parquet); default: CSV on stdout.")
@click.option("--param", "param_list", multiple=True, metavar="NAME=VALUE", help=_PARAM_HELP)
@click.option("--list", "list_reports", is_flag=True, help="List the reports and their parameters.")
@click.option("--excel-safe/--no-excel-safe", default=True, show_default=True,
              help="Neutralise text cells that a spreadsheet would run as formulas (CSV).")
@click.option("--encoding", default="utf-8", show_default=True, help="CSV encoding; utf-8-sig adds a BOM for Excel.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: if a terminal].")
@pass_script_info
@errors_as_one_line
def report_command(
    info: ScriptInfo,
    name: str | None,
    output: Path | None,
    param_list: tuple[str, ...],
    list_reports: bool,
    excel_safe: bool,
    encoding: str,
    progress: bool | None,
) -> None:
    """Run the report NAME and write its rows to a file (or stdout).

    \b
    flask --app my_app report --list
    flask --app my_app report signups-by-week -o signups.csv --param since=2026-01-01
    """
    from . import reports
    from .export.files import output_format

    if list_reports:
        _print_listing(reports.listing(info.load_app()))
        return
    if not name:
        raise click.ClickException("Name a report (flask report NAME -o FILE), or list them with --list.")
    params = _params(param_list)
    fmt = output_format(output) if output is not None else "csv"

    workbench = _open_workbench(info, "report")
    try:
        built = reports.get(name, workbench.app).build(**params)
        if output is None:
            from .export import write_csv_stream

            try:
                rows = write_csv_stream(
                    workbench.session, built, sys.stdout.buffer, excel_safe=excel_safe, encoding=encoding,
                    application_name=workbench.application_name,
                )
                sys.stdout.flush()
            except BrokenPipeError:
                # The reader went away (`flask report ... | head`): stop quietly, as Unix tools do.
                _silence_stdout()
                return
            click.echo(f"{rows:,} rows.", err=True)
            return
        result = _write(workbench, built, output, fmt, None, None, excel_safe, encoding, progress)
    finally:
        workbench.close()
    _summary(result)


def _write(
    workbench: Workbench,
    query: t.Any,
    path: Path,
    fmt: str,
    params: dict[str, t.Any] | None,
    chunksize: int | None,
    excel_safe: bool,
    encoding: str,
    progress: bool | None,
) -> ExportResult:
    from .export import export_frame

    show = sys.stderr.isatty() if progress is None else progress
    if hasattr(query, "iloc") and hasattr(query, "columns"):  # a report that computed a DataFrame
        return export_frame(query, path, excel_safe=excel_safe, encoding=encoding)
    if fmt == "parquet":
        return workbench.export_parquet(query, path, params=params, chunksize=chunksize, progress=show)
    return workbench.export_csv(
        query, path, params=params, chunksize=chunksize, excel_safe=excel_safe, progress=show, encoding=encoding
    )


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush does not fail on the closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (a test runner's buffer): nothing will be flushed


def find_model(workbench: Workbench, name: str) -> type:
    """The model class called ``name`` (case-insensitive when unambiguous)."""
    import difflib

    models = workbench.models
    if name in models:
        return models[name]
    folded = [m for m in models if m.lower() == name.lower()]
    if len(folded) == 1:
        return models[folded[0]]
    close = difflib.get_close_matches(name, list(models), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise QueryError(f"No model named {name!r}.{hint} Models: {', '.join(models) or 'none'}.")


def find_table(workbench: Workbench, name: str) -> t.Any:
    """The table called ``name``: declared by the app, or else found in the database."""
    import difflib

    import sqlalchemy as sa

    for metadata in workbench.db.metadatas.values():
        if name in metadata.tables:
            return metadata.tables[name]
    existing: list[str] = []
    for bind_key, engine in workbench.db.engines.items():
        names = sa.inspect(engine).get_table_names()
        if name in names:
            # The bind key in the MetaData, as Flask-SQLAlchemy keeps it: reads go to this engine.
            return sa.Table(name, sa.MetaData(info={"bind_key": bind_key}), autoload_with=engine)
        existing += names
    close = difflib.get_close_matches(name, existing, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise QueryError(f"No table named {name!r} in the database.{hint} Tables: {', '.join(sorted(existing)) or 'none'}.")


def _print_listing(frame: t.Any) -> None:
    if frame.empty:
        click.echo("No reports. Register one with @analysis.report or the app's ANALYSIS_REPORTS.")
        return
    for row in frame.itertuples(index=False):
        click.echo(f"{row.report}({row.parameters})")
        if row.description:
            click.echo(f"    {row.description}")
