"""Every notebook in notebooks/ runs top to bottom in a fresh kernel of this venv.

Each runs in its own temporary working folder with ``LAKEML_WAREHOUSE`` pointing at a
temporary warehouse, so notebooks can use the embedded default as a user would.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def execute(nb, cwd: Path, timeout: int = 300):
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def test_there_are_notebooks():
    assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)


def test_kernel_is_this_venv(tmp_path):
    """The 'python3' kernel must be this interpreter's, or notebooks would miss lakeml."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys, lakeml; print(sys.prefix)")])
    out = execute(nb, tmp_path).cells[0].outputs
    printed = "".join(o.get("text", "") for o in out).strip()
    assert Path(printed).resolve() == Path(sys.prefix).resolve()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEML_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("LAKEML_CATALOG", raising=False)
    nb = nbformat.read(path, as_version=4)
    execute(nb, tmp_path)  # raises CellExecutionError, with the failing cell, on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert (tmp_path / "warehouse").is_dir()
