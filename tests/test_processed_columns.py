"""Columns whose type processes values in Python: the same values on every backend and route.

tests/apps/vault.py stores a ``PickleType`` (pickled bytes in the database, dicts and lists in
Python) and an ``EncodedText`` TypeDecorator (base64 in the database, plain text in Python).
Its app is built when the module is imported, so each backend runs in a child process.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import subprocess
import sys
import typing as t
from pathlib import Path

import pandas as pd
import pytest
from kernels import kernel_environment
from testing_apps import VAULT, prepared, spelled
from testing_backends import ALL_BACKENDS, server_unavailable_reason, throwaway_database

EXPORT = """
import pickle, sys
import analysis, analysis.export
wb = analysis.connect("apps.vault")
Secret = wb.models["Secret"]
result = wb.export_csv(Secret, sys.argv[1], progress=False)
with open(sys.argv[2], "wb") as f:
    pickle.dump({"route": result.route, "frame": wb.frame(Secret)}, f)
if wb.db.engine.dialect.name == "postgresql":
    try:
        # The pipeline's own option: COPY or nothing.
        analysis.export.export_csv(wb.session, Secret, sys.argv[1] + ".copy", method="copy")
    except analysis.ExportError as e:
        print(e)
"""


def export_on(backend: str, tmp_path: Path) -> tuple[bytes, dict[str, t.Any], str]:
    """The CSV bytes of ``Secret`` exported from ``backend``, what frame() gave, and what a
    forced COPY said."""
    folder = tmp_path / backend
    folder.mkdir()
    with throwaway_database(backend, folder) as url, prepared(VAULT, backend, url, folder) as app:
        result = subprocess.run(
            [sys.executable, "-c", EXPORT, str(folder / "secrets.csv"), str(folder / "out.pkl")],
            env=kernel_environment(app.env), cwd=folder, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return (folder / "secrets.csv").read_bytes(), pickle.loads((folder / "out.pkl").read_bytes()), result.stdout


def test_csv_of_processed_columns_is_the_same_bytes_on_every_backend(tmp_path):
    for backend in ALL_BACKENDS:
        reason = server_unavailable_reason(backend)
        if reason is not None:  # the test compares all three: as conftest does, skip unless in CI
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"CI=true but {reason}")
            pytest.skip(reason)
    exports = {backend: export_on(backend, tmp_path) for backend in ALL_BACKENDS}
    data, out, _ = exports["sqlite"]
    for backend, (other, _, _) in exports.items():
        assert other == data, f"{backend} wrote other bytes than sqlite:\n{other.decode()}\n---\n{data.decode()}"
    # ... and they are the values the ORM returns, spelled as the README says.
    frame = out["frame"].sort_values("id")
    rows = sorted(csv.DictReader(io.StringIO(data.decode())), key=lambda r: int(r["id"]))
    for row, note, payload in zip(rows, frame["note"], frame["payload"], strict=True):
        expected_note = "" if pd.isna(note) else ("'" + note if note.startswith("=") else note)
        assert row["note"] == expected_note
        assert row["payload"] == ("" if payload is None else spelled(payload))


@pytest.mark.backends("postgresql")
def test_a_forced_copy_refuses_processed_columns_naming_them(tmp_path, backend):
    _, out, said = export_on(backend, tmp_path)
    assert out["route"] != "copy"
    assert "note" in said and "payload" in said and "method='auto'" in said
