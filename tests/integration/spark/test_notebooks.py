"""Every notebook in notebooks/ runs: its code cells are executed in order with exec().

Notebooks see ``SMALL = True`` (use a small problem), ``EXPERIMENTS`` and ``WORKDIR`` (a
temporary dir) and run from that dir.
"""

import json
import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[3] / "notebooks").glob("*.ipynb"))


def _code_cells(path: Path) -> list[str]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_there_are_notebooks_to_run():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb file"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path, spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__notebook__", "SMALL": True, "WORKDIR": str(tmp_path), "EXPERIMENTS": str(tmp_path / "experiments")}
    for index, source in enumerate(_code_cells(path)):
        try:
            exec(compile(source, f"{path.name}[cell {index}]", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"{path.name} cell {index} raised {type(error).__name__}: {error}")
    assert os.listdir(tmp_path), f"{path.name} ran but wrote nothing under its workdir"
