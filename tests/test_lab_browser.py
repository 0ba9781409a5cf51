"""Every example notebook runs with Run All in JupyterLab, in a real headless Chromium.

This is how people use the notebooks (``make lab``): JupyterLab on a copy of ``notebooks/``, the
kernel pointed at a demo SQLite database made with the app's own ``flask init-db`` and ``flask
seed``. A notebook passes when every code cell ran, no output is an error (an error output, or a
traceback, ``...Error:`` line or warning on stderr; log lines and tqdm's note that it cannot draw
a widget are fine), and every cell that draws a figure shows an ``img`` or ``svg`` in its output
area. Screenshots of each notebook (whole, and each figure) are
kept in ``tests/.artifacts/browser/``.

Chromium is the system's (Debian's ``chromium`` package; ``.ci/run`` installs it), driven by
Playwright's Python package. Without it these tests skip with the reason; under CI=true they fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import nbformat
import pytest
from browser import LabNotebook, LabServer, browser_unavailable_reason, error_lines, lab_page, launch_chromium
from conftest import IN_CI
from kernels import kernel_environment

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ARTIFACTS = Path(__file__).parent / ".artifacts" / "browser"
#: A cell that plots, or shows the schema diagram, must show an image or SVG.
FIGURE_CALL = re.compile(r"\.plot\b|\bwb\.schema\(\)$")

pytestmark = [pytest.mark.slow, pytest.mark.browser]

if t.TYPE_CHECKING:
    from playwright.sync_api import BrowserContext


@pytest.fixture(scope="module")
def browser_available() -> None:
    reason = browser_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def lab(browser_available: None, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[LabServer]:
    """JupyterLab on a copy of notebooks/, with a seeded demo database, as `make lab` runs it."""
    base = tmp_path_factory.mktemp("lab")
    root_dir = base / "notebooks"
    root_dir.mkdir()
    for path in NOTEBOOKS:
        (root_dir / path.name).write_bytes(path.read_bytes())
    env = kernel_environment(
        {"FLASK_APP": "my_app", "MY_APP_SQLALCHEMY_DATABASE_URI": f"sqlite:///{base / 'demo.sqlite'}"}
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    server = LabServer(root_dir, base / "jupyter", env, log_path=ARTIFACTS / f"jupyterlab-{worker}.log")
    server.launch()  # starts while the database is seeded: no kernel runs before the first test
    try:
        for command in (["init-db"], ["seed", "--users", "300", "--events", "6000", "--data-points", "200"]):
            done = subprocess.run(
                [sys.executable, "-m", "flask", "--app", "my_app", *command],
                env=env, cwd=base, capture_output=True, text=True, timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        server.wait_until_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium(lab: LabServer, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[BrowserContext]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium-profile"))
        try:
            yield context
        finally:
            context.close()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_all_in_jupyterlab_without_errors(path: Path, lab: LabServer, chromium: BrowserContext) -> None:
    for old in ARTIFACTS.glob(f"{path.stem}*.png"):
        old.unlink()
    # The kernel stays up until the server stops (which shuts every kernel down).
    with lab_page(chromium) as page:
        notebook = LabNotebook(page, lab, path.name)
        notebook.open()
        notebook.run_all()
        notebook.save()
        rendered = notebook.cells()
        screenshots = notebook.screenshots(ARTIFACTS)

    saved = nbformat.read(lab.root_dir / path.name, as_version=4)
    code_cells = [cell for cell in saved.cells if cell.cell_type == "code"]
    errors = [
        f"cell {i}: {output.ename}: {output.evalue}"
        for i, cell in enumerate(code_cells, 1)
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, f"{path.name} (see {screenshots[0]}):\n" + "\n".join(errors)
    not_run = [i for i, cell in enumerate(code_cells, 1) if not cell.execution_count]
    assert not not_run, f"{path.name}: Run All stopped before code cells {not_run} (see {screenshots[0]})"

    rendered_code = [cell for cell in rendered if cell["code"]]
    assert len(rendered_code) == len(code_cells)
    stderr_errors = [
        f"cell {i}: {line}"
        for i, cell in enumerate(rendered_code, 1)
        for text in cell["stderr"]
        for line in error_lines(text)
    ]
    assert not stderr_errors, f"{path.name} shows errors (see {screenshots[0]}):\n" + "\n".join(stderr_errors)

    expected_figures = [i for i, cell in enumerate(code_cells, 1) if FIGURE_CALL.search(cell.source)]
    missing = [i for i in expected_figures if not (rendered_code[i - 1]["images"] or rendered_code[i - 1]["svgs"])]
    assert not missing, f"{path.name}: no figure rendered in code cells {missing} (see {screenshots[0]})"


def test_an_error_in_a_cell_is_seen_and_stops_run_all(lab: LabServer, chromium: BrowserContext) -> None:
    """The checks above are not vacuous: a failing cell shows up both on screen and on disk."""
    broken = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell('print("before")'),
            nbformat.v4.new_code_cell("1 / 0"),
            nbformat.v4.new_code_cell('print("never")'),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(broken, lab.root_dir / "broken.ipynb")
    with lab_page(chromium) as page:
        notebook = LabNotebook(page, lab, "broken.ipynb")
        notebook.open()
        notebook.run_all()
        notebook.save()
        rendered = [cell for cell in notebook.cells() if cell["code"]]

    assert [bool(error_lines(text)) for cell in rendered for text in cell["stderr"]] == [True]
    assert any("ZeroDivisionError" in line for text in rendered[1]["stderr"] for line in error_lines(text))
    saved = nbformat.read(lab.root_dir / "broken.ipynb", as_version=4)
    assert [output.output_type for output in saved.cells[1].outputs] == ["error"]
    assert saved.cells[2].execution_count is None
