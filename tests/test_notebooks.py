"""Every example notebook runs top to bottom in a real kernel against seeded demo data.

A notebook's cells run in its own scratch directory (files it writes land there), with
``FLASK_APP=my_app`` and the database pointed at a freshly seeded SQLite file, as `make lab`
does with the instance database.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from kernels import kernel_environment
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

pytestmark = [pytest.mark.backends("sqlite"), pytest.mark.slow]


@pytest.fixture
def demo_app(app, runner):
    result = runner.invoke(args=["seed", "--users", "300", "--events", "6000", "--data-points", "200"])
    assert result.exit_code == 0, result.output
    return app


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, demo_app, tmp_path, monkeypatch):
    env = kernel_environment(
        {"FLASK_APP": "my_app", "MY_APP_SQLALCHEMY_DATABASE_URI": demo_app.config["SQLALCHEMY_DATABASE_URI"]}
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(path, as_version=4)
    workdir = tmp_path / "run"
    workdir.mkdir()
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    errors = [
        output for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.get("outputs", []) if output.output_type == "error"
    ]
    assert not errors
    assert all(cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code")


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"
