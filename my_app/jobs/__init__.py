"""Scheduled jobs, one module each, run from cron in either of two ways::

    python -m my_app.jobs.daily_summary --day 2026-11-24
    flask --app my_app run-job daily_summary --day 2026-11-24

Each job module has a ``main(argv, prog=None) -> int`` that parses its arguments and returns
the exit status. Job modules use the ``analysis`` toolkit; this package's ``__init__`` does not,
so registering the ``run-job`` command costs the web app nothing: a job's module (and the
toolkit) is imported only when that job runs.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import typing as t

import click


def available() -> dict[str, str]:
    """Job name -> first line of its docstring, read without importing the job."""
    jobs = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        spec = importlib.util.find_spec(f"{__name__}.{info.name}")
        summary = ""
        if spec is not None and spec.origin:
            with open(spec.origin, encoding="utf-8") as f:
                doc = ast.get_docstring(ast.parse(f.read())) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else ""
        jobs[info.name] = summary
    return dict(sorted(jobs.items()))


@click.command(
    "run-job",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("name", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run_job_command(ctx: click.Context, name: str | None, args: tuple[str, ...]) -> None:
    """Run the scheduled job NAME (a module in my_app/jobs) with ARGS; without NAME, list the
    jobs. `run-job NAME --help` shows the job's own options. The exit status is the job's."""
    jobs = available()
    if name is None:
        width = max(map(len, jobs), default=0)
        for job_name, summary in jobs.items():
            click.echo(f"{job_name:<{width}}  {summary}")
        return
    module_name = name.replace("-", "_")
    if module_name not in jobs:
        raise click.UsageError(f"No job named {name!r}. Jobs: {', '.join(jobs) or '(none)'}.")
    module = importlib.import_module(f"{__name__}.{module_name}")
    main: t.Callable[..., int] = module.main
    ctx.exit(main(list(args), prog=f"{ctx.command_path} {name}"))
