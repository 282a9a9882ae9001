"""Every notebook in notebooks/ is a valid nbformat-4 notebook for the python3 kernel, committed with its
outputs stripped; its first code cell is its parameter cell (WORKDIR from H3SPARK_NOTEBOOK_WORKDIR, else a
temporary folder) and its code compiles. Running them needs Spark and a kernel:
tests/integration/notebooks/test_notebooks_run.py, which checks each one's figure."""

from pathlib import Path

import nbformat
import pytest
from nbformat import v4

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_data_and_preprocessing.ipynb", "02_parallel_experiments.ipynb", "03_distributed_training.ipynb",
            "04_actor_network.ipynb", "05_gates_and_sentinels.ipynb"]


def unstripped(notebook) -> list[str]:
    """``cell N: ...`` for each code cell that carries outputs, an execution count or execution timings."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        kept = [f"{len(cell.outputs)} output(s)"] if cell.outputs else []
        kept += [f"execution_count {cell.execution_count}"] if cell.execution_count is not None else []
        kept += ["metadata.execution"] if "execution" in cell.metadata else []
        if kept:
            found.append(f"cell {index}: {', '.join(kept)}")
    return found


def test_the_notebooks_are_the_five_of_the_walkthrough():
    assert [path.name for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_valid_nbformat_4_for_python3_with_outputs_stripped(path):
    notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert notebook.nbformat == 4, f"{path.name}: nbformat {notebook.nbformat}, not 4"
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    assert unstripped(notebook) == [], f"{path.name}: strip the outputs (jupyter nbconvert --clear-output --inplace)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_code_compiles_and_starts_with_its_parameter_cell(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: tag the first code cell 'parameters'"
    assert 'os.environ.get("H3SPARK_NOTEBOOK_WORKDIR")' in first.source and "os.chdir(WORKDIR)" in first.source
    for index, cell in enumerate(code):
        compile(cell.source, f"{path.name}[code cell {index}]", "exec")
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    assert len(markdown) >= len(code) // 2, f"{path.name}: explain the steps in markdown cells"


def test_unstripped_names_each_code_cell_that_kept_outputs_counts_or_timings():
    kept = v4.new_code_cell("print(1)", execution_count=1, outputs=[v4.new_output("stream", text="1\n")])
    counted = v4.new_code_cell("x = 2", execution_count=3)
    timed = v4.new_code_cell("y = 3", metadata={"execution": {"iopub.status.idle": "2026-11-29T02:00:00Z"}})
    notebook = v4.new_notebook(cells=[v4.new_markdown_cell("# title"), kept, v4.new_code_cell("z = 4"), counted, timed])
    assert unstripped(notebook) == ["cell 1: 1 output(s), execution_count 1", "cell 3: execution_count 3",
                                    "cell 4: metadata.execution"]


def test_the_integration_test_checks_every_notebook():
    from tests.integration.notebooks.test_notebooks_run import CHECKS

    assert sorted(CHECKS) == [path.name for path in NOTEBOOKS]
