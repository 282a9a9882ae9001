"""Every notebook in notebooks/ is an nbformat-4 notebook whose code cells compile.
Running them needs Spark: tests/integration/spark/test_notebooks.py."""

import json
import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def _code_cells(path: Path) -> list[str]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook.get("nbformat") == 4, f"{path.name}: not an nbformat 4 notebook"
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb file"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_cells_compile(path):
    cells = _code_cells(path)
    assert cells, f"{path.name} has no code cells"
    for index, source in enumerate(cells):
        compile(source, f"{path.name}[cell {index}]", "exec")
