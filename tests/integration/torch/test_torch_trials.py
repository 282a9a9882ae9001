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
    """Load the saved model (Model.save's file: spec and weights) under ``python`` with the torch
    engine, and score ``split`` as the trainer scored it."""
    script = textwrap.dedent("""
        import sys
        from h3spark.train.engines.model import load_model
        from h3spark.train.engines.splits import load_split
        path, uri, split = sys.argv[1:]
        print(load_model(path, engine="torch").evaluate(*load_split(uri, split))["accuracy"])
    """)
    done = subprocess.run([python, "-c", script, str(model_path), dataset_uri, split], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return float(done.stdout.strip().splitlines()[-1])


MODULE_SCRIPT = """
import json, sys, tempfile
import torch
from h3spark.tune._models import save_model

module = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
with tempfile.TemporaryDirectory() as folder:
    path = save_model(module, folder)
    data = open(path, "rb").read()
size = int.from_bytes(data[:8], "little")
print(json.dumps({"name": path.rsplit("/", 1)[1], "header": json.loads(data[8:8 + size])}))
"""


def test_a_torch_module_a_user_trial_built_is_saved_as_safetensors(torch_python):
    """ctx.save_model of a plain torch module (a custom train_fn's): its state_dict, no pickle."""
    done = subprocess.run([torch_python, "-c", MODULE_SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads(done.stdout.strip().splitlines()[-1])
    assert saved["name"] == "model.safetensors"
    assert sorted(key for key in saved["header"] if key != "__metadata__") == ["0.bias", "0.weight", "2.bias", "2.weight"]


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
    # 4 classes: chance is 0.25, and a cross-entropy of ln 4 (the slowest trial, lr 0.001 and 8 units, ends near 1.05)
    assert (frame["metric_accuracy"] > 0.6).all() and (frame["metric_loss"] < 0.9 * np.log(4)).all()
    assert sorted(zip(frame["param_lr"], frame["param_hidden"])) == [(0.001, 8), (0.001, 16), (0.01, 8), (0.01, 16)]
    for logdir in frame["logdir"]:
        scalars = read_scalars(Path(logdir[len("file://"):]))
        assert [step for step, _ in scalars["loss"]][:3] == [0, 1, 2], scalars.keys()
        assert all(0.0 <= value <= 1.0 for _, value in scalars["accuracy"])
    # Other jobs of the session keep the driver's interpreter: only the experiment's slots were switched.
    assert sc.parallelize([0], 1).map(lambda _: sys.executable).collect() == [sc.pythonExec]

    best_model = tmp_path / "exp" / "best_model" / "model.safetensors"
    header = safetensors_header(best_model)
    meta = json.loads(header["__metadata__"]["h3spark"])  # Model.save's: the engine and the spec
    layers = [(layer["type"], layer.get("units", layer.get("rate"))) for layer in meta["spec"]["layers"]]
    assert meta["engine"] == "torch" and meta["spec"]["input_shape"] == [16]
    assert layers == [("dense", result.best_params["hidden"]), ("dropout", 0.1), ("dense", 4)]  # dropout reached the model
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
