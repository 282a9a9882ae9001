"""Experiment trials that train the built-in torch MLP on local[2] Spark, the driver in this venv
(which may lack torch) and Spark's Python workers on the torch interpreter (spark.pyspark.python)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from h3spark.cli import main
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def forget_worker_python():
    """PySpark's builder leaves each option in the JVM's system properties, where the next session's
    SparkConf (and get_spark, which takes them for spark-submit's) would find this interpreter."""
    yield
    from pyspark import SparkContext

    if SparkContext._jvm is not None:
        SparkContext._jvm.System.clearProperty("spark.pyspark.python")


@pytest.fixture
def torch_spark(torch_python, forget_worker_python):
    """A local[2] session of its own whose Python workers run ``torch_python``; stopped after."""
    require(shutil.which("java") is not None, "Java 17 is needed for Spark; install a JDK (apt-get install openjdk-17-jdk-headless)")
    from h3spark.config import SparkConfig
    from h3spark.spark import get_spark, stop_spark

    stop_spark()  # the shared session, if any: get_spark would hand it back, with the default interpreter
    spark = get_spark(SparkConfig(master="local[2]", app_name="h3spark-torch-trials",
                                  conf={"spark.pyspark.python": torch_python, "spark.ui.enabled": False}))
    yield spark
    spark.stop()


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir)).Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file: raw tensors follow it, there is no pickle to load."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size])


def evaluate_saved_model(python: str, model_path: Path, dataset_uri: str, split: str) -> float:
    """Rebuild the MLP from the file's metadata under ``python`` (with torch), reload it, score ``split``."""
    script = textwrap.dedent("""
        import sys
        from h3spark.feed import DataIterator
        from h3spark.train.engines.torch_models import accuracy, load_mlp
        path, uri, split = sys.argv[1:]
        print(accuracy(load_mlp(path), DataIterator(uri, split, batch_size=512), "cpu"))
    """)
    done = subprocess.run([python, "-c", script, str(model_path), dataset_uri, split], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return float(done.stdout.strip().splitlines()[-1])


MLP_SCRIPT = """
import json, sys, tempfile
import torch
from h3spark.train.engines import torch as engine
from h3spark.train.engines.torch_models import build_mlp, load_mlp, save_module

plain = build_mlp(16, [8, 4], 3, seed=5)
dropped = build_mlp(16, 8, 3, seed=5, dropout=0.25)
with tempfile.TemporaryDirectory() as folder:
    path = save_module(dropped, folder, {"features": 16, "hidden": 8, "classes": 3, "dropout": 0.25})
    again = load_mlp(path)
x = torch.randn(5, 16)
print(json.dumps({
    "plain": [type(layer).__name__ for layer in plain],
    "keys": sorted(plain.state_dict()),
    "dropout": [layer.p for layer in dropped if isinstance(layer, torch.nn.Dropout)],
    "reloaded_same": bool(torch.equal(dropped.eval()(x), again(x))) and not again.training,
    "engine_builds_the_same": engine.build_mlp is build_mlp,
    "seeded": bool(torch.equal(plain[0].weight, build_mlp(16, [8, 4], 3, seed=5)[0].weight)),
}))
"""


def test_the_mlp_builder_dropout_and_the_saved_file(torch_python):
    done = subprocess.run([torch_python, "-c", MLP_SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["plain"] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]  # no Dropout layer at rate 0
    assert facts["keys"] == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]  # the engine's checkpoints' names
    assert facts["dropout"] == [0.25] and facts["reloaded_same"] and facts["engine_builds_the_same"] and facts["seeded"]


def test_grid_of_torch_trials_runs_on_the_torch_workers(torch_spark, torch_python, blobs, tmp_path):
    from h3spark import tune
    from h3spark.tune._executors import worker_python
    from h3spark.tune._models import TorchTrainer

    sc = torch_spark.sparkContext
    if torch_python != sys.executable:
        assert worker_python(sc) == torch_python
    trainer = TorchTrainer("mlp", {"epochs": 3, "batch_size": 64, "classes": 4, "hidden": 16, "dropout": 0.1})
    result = tune.grid_search(trainer, {"lr": [0.001, 0.01], "hidden": [8, 16]}, metric="accuracy", direction="max",
                              experiment_dir=f"file://{tmp_path}/exp", dataset_uri=blobs, spark=torch_spark, timeout_s=240)

    frame = result.results
    assert len(frame) == 4 and (frame["status"] == "completed").all(), frame["error"].dropna().tolist()
    assert (frame["metric_accuracy"] > 0.6).all() and (frame["metric_loss"] < 1.0).all()  # 4 classes: chance is 0.25
    assert sorted(zip(frame["param_lr"], frame["param_hidden"])) == [(0.001, 8), (0.001, 16), (0.01, 8), (0.01, 16)]
    for logdir in frame["logdir"]:
        scalars = read_scalars(Path(logdir[len("file://"):]))
        assert [step for step, _ in scalars["loss"]][:3] == [0, 1, 2], scalars.keys()
        assert all(0.0 <= value <= 1.0 for _, value in scalars["accuracy"])
    # Other jobs of the session keep the driver's interpreter: only the experiment's slots were switched.
    assert sc.parallelize([0], 1).map(lambda _: sys.executable).collect() == [sc.pythonExec]

    best_model = tmp_path / "exp" / "best_model" / "model.safetensors"
    header = safetensors_header(best_model)
    spec = {"features": 16, "hidden": result.best_params["hidden"], "classes": 4, "dropout": 0.1}
    assert json.loads(header["__metadata__"]["h3spark"]) == spec  # the experiment's dropout reached the model
    assert {info["dtype"] for name, info in header.items() if name != "__metadata__"} == {"F32"}
    reloaded = evaluate_saved_model(torch_python, best_model, blobs, "test")
    assert reloaded == pytest.approx(result.best_metrics["accuracy"], abs=1e-9)


def test_example_config_preprocesses_digits_then_trains_torch_trials(torch_python, forget_worker_python, tmp_path, capsys):
    require(shutil.which("java") is not None, "Java 17 is needed for Spark; install a JDK (apt-get install openjdk-17-jdk-headless)")
    from h3spark.spark import stop_spark

    stop_spark()  # 'h3spark run' would reuse an active session and its interpreter
    text = (ROOT / "conf" / "experiment_torch_example.yaml").read_text()
    assert "spark.pyspark.python: .venv-torch/bin/python" in text
    config = tmp_path / "experiment_torch_example.yaml"  # the same config, with the interpreter the tests found
    config.write_text(text.replace(".venv-torch/bin/python", json.dumps(torch_python)))
    workdir = tmp_path / "work"
    assert main(["run", str(config), "--workdir", str(workdir), "--set", "experiment.space.hidden=[32]",
                 "--set", "experiment.model.params.epochs=6"]) == 0
    assert "trials: 2 completed" in capsys.readouterr().out

    exp = workdir / "experiments" / "experiment_torch_example"
    records = json.loads((exp / "results.json").read_text())
    assert [record["status"] for record in records] == ["completed", "completed"]
    assert all(record["metric_accuracy"] > 0.8 for record in records)  # 10 digits: chance is 0.1
    for record in records:
        assert len(read_scalars(Path(record["logdir"][len("file://"):]))["accuracy"]) >= 6
    best = json.loads((exp / "best.json").read_text())["best"]
    model = exp / "best_model" / "model.safetensors"
    assert best["model"] == "model/model.safetensors" and model.exists()
    reloaded = evaluate_saved_model(torch_python, model, f"file://{workdir}/datasets/digits_preprocessed", "validation")
    assert reloaded == pytest.approx(best["metric_accuracy"], abs=1e-9)
    assert np.isfinite(best["metric_loss"])
