"""Each notebook in notebooks/ runs top to bottom under a real Jupyter kernel (ipykernel, driven by nbclient)
on the embedded defaults (local Spark, the local file system, the in-process bus), in its own temporary
workdir (H3SPARK_NOTEBOOK_WORKDIR) and from the notebooks folder, as a user's Jupyter starts it. Then its
outputs show the figure the notebook states, its files are in the workdir, and nothing was written into
the repository."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_S = 600  # a bound for one cell on a loaded 2-core machine; each notebook takes well under a minute

pytestmark = [pytest.mark.spark, pytest.mark.timeout(1800)]


def run_notebook(path: Path, workdir: Path, monkeypatch):
    """Execute ``path`` in a fresh python3 kernel of this interpreter; the executed notebook."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("H3SPARK_NOTEBOOK_WORKDIR", str(workdir))
    notebook = nbformat.read(path, as_version=4)
    # Only ipykernel's own kernel spec, whose command is this interpreter (sys.executable): a python3 kernel
    # spec installed elsewhere on the machine (~/.local/share/jupyter) cannot run the notebook in another Python.
    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    client = NotebookClient(notebook, km=manager, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed under the kernel:\n{error}")
    return notebook


def output_text(cell) -> str:
    """The text a cell showed: its streams and the plain text of its results."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def number(pattern: str, text: str, where: str) -> list[str]:
    found = re.search(pattern, text)
    assert found, f"{where}: no line matching {pattern!r} in:\n{text[-3000:]}"
    return list(found.groups())


def check_data_and_preprocessing(text: str, last: str, workdir: Path) -> None:
    rows_out, rows_in, uri, listed, quarantined = number(
        r"published (\d+) of (\d+) rows to (\S+) \(([^)]*)\), (\d+) quarantined", last, "the summary")
    assert (int(rows_out), int(rows_in), int(quarantined)) == (1797, 1797, 0)
    splits = {name: int(rows) for name, rows in (pair.split("=") for pair in listed.split(", "))}
    assert sorted(splits) == ["test", "train", "validation"] and sum(splits.values()) == 1797 and splits["test"] > 0
    assert uri == f"file://{workdir}/datasets/digits"
    assert "refused, 2 violations" in text and "(unchanged: True)" in text
    assert "4 of 5 rows transformed" in text and "pixel outside [0, 16]" in text
    assert list((workdir / "datasets" / "digits" / "_versions").iterdir())


def check_parallel_experiments(text: str, last: str, workdir: Path) -> None:
    (accuracy,) = number(r"validation accuracy (\d\.\d+)", last, "the summary")
    assert float(accuracy) >= 0.90
    grid = workdir / "experiments" / "sgd_grid"
    assert f"h3spark tensorboard {grid}" in text
    trials = sorted((grid / "trials").iterdir())
    assert len(trials) == 4 and all(list(trial.glob("*tfevents*")) for trial in trials)
    assert list(grid.glob("*tfevents*")), "the HParams experiment summary is missing from the experiment folder"
    assert (grid / "metric_vs_params.png").stat().st_size > 0 and (grid / "best_model").is_dir()


def check_distributed_training(text: str, last: str, workdir: Path) -> None:
    assert "kvstore=dist_sync workers=2 servers=1" in last
    accuracy, rows = number(r"test accuracy (\d\.\d+) on (\d+) rows", last, "the summary")
    assert float(accuracy) >= 0.90 and int(rows) > 100
    assert list((workdir / "checkpoints" / "digits_mxnet").glob("run-*/step-*"))


def check_actor_network(text: str, last: str, workdir: Path) -> None:
    teacher, student, baseline = map(float, number(
        r"teacher (\d\.\d+), student (\d\.\d+), baseline (\d\.\d+)", last, "the summary"))
    assert student >= 0.85 and teacher >= 0.90
    assert "messages on distill.soft" in text and "kind=predictions sender=teacher" in text
    assert list((workdir / "actors" / "actors-distill-teacher" / "teacher" / "snapshots").iterdir())


def check_gates_and_sentinels(text: str, last: str, workdir: Path) -> None:
    accuracy, rows = number(r"test accuracy (\d\.\d+) on (\d+) rows", last, "the summary")
    assert float(accuracy) >= 0.85 and int(rows) > 300
    assert "gate g1" in text and "gate g3" in text and "delays, all gates" in text


CHECKS = {
    "01_data_and_preprocessing.ipynb": check_data_and_preprocessing,
    "02_parallel_experiments.ipynb": check_parallel_experiments,
    "03_distributed_training.ipynb": check_distributed_training,
    "04_actor_network.ipynb": check_actor_network,
    "05_gates_and_sentinels.ipynb": check_gates_and_sentinels,
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs_under_a_kernel_and_shows_its_figure(name, tmp_path, monkeypatch):
    require(shutil.which("java") is not None,
            "Java 17 is needed for the notebooks' local Spark; install a JDK (apt-get install openjdk-17-jdk-headless)")
    workdir = (tmp_path / "work").resolve()
    before = sorted(path.name for path in NOTEBOOKS.iterdir())
    notebook = run_notebook(NOTEBOOKS / name, workdir, monkeypatch)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(output_text(cell) for cell in code)
    assert f"workdir: {workdir}" in output_text(code[0])
    assert f"({sys.executable})" in text, "the kernel did not run this interpreter"
    CHECKS[name](text, output_text(code[-1]), workdir)
    assert sorted(path.name for path in NOTEBOOKS.iterdir()) == before, "the notebook wrote into notebooks/"
