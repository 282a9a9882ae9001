"""The experiment: section end to end, the built-in trainers (sklearn, Gluon MLP and CNN),
'h3spark tensorboard', and GPU-per-trial from Spark's task resources (fake GPUs)."""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from h3spark.cli import main
from h3spark.config import load_config
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[4]


def test_example_config_runs_ingest_then_the_grid_and_resumes(tmp_path, capsys):
    workdir = str(tmp_path / "work")
    args = ["run", str(ROOT / "conf/experiment_example.yaml"), "--workdir", workdir, "--set", "experiment.space.C=[0.01, 1.0]"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best trial" in out and "trials: 2 completed" in out
    exp = tmp_path / "work" / "experiments" / "experiment_example"
    best = json.loads((exp / "best.json").read_text())["best"]
    assert best["status"] == "completed" and best["metric_accuracy"] > 0.85 and (exp / "best_model" / "model.joblib").exists()
    assert main(["experiment", str(ROOT / "conf/experiment_example.yaml"), "--workdir", workdir,
                 "--set", "experiment.space.C=[0.01, 1.0, 10.0]"]) == 0
    started = [json.loads(line)["trial_id"] for line in (exp / "trials.jsonl").read_text().splitlines()
               if json.loads(line)["event"] == "started"]
    assert sorted(started) == [0, 1, 2]


def test_an_unknown_model_param_fails_each_trial_not_the_command(tmp_path, capsys):
    workdir = str(tmp_path / "work")
    assert main(["run", str(ROOT / "conf/experiment_example.yaml"), "--workdir", workdir,
                 "--set", "experiment.space={Cee: [1.0]}"]) == 1
    exp = tmp_path / "work" / "experiments" / "experiment_example"
    record = json.loads((exp / "results.json").read_text())[0]
    assert record["status"] == "failed" and "Cee: not a parameter of LogisticRegression" in record["error"]
    assert "no trial of the experiment succeeded" in capsys.readouterr().err


@pytest.mark.parametrize("model, space", [("mlp", {"hidden": [32], "lr": [0.01], "dropout": [0.1]}),
                                          ("cnn", {"channels": [8], "lr": [0.02]})])
def test_gluon_trainers_read_the_dataset_through_the_iterator(tmp_path, model, space):
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")
    workdir = tmp_path / "work"
    config = tmp_path / "gluon.yaml"
    config.write_text(textwrap.dedent(f"""
        name: gluon_{model}
        spark: {{master: "local[2]"}}
        source: {{format: bundled, name: digits}}
        dataset: {{uri: datasets/digits, overwrite: true, partitions: 2}}
        experiment:
          search: grid
          model: {{engine: mxnet, name: {model}, params: {{epochs: 4, batch_size: 64}}}}
          space: {json.dumps(space)}
    """))
    assert main(["run", str(config), "--workdir", str(workdir)]) == 0
    frame_path = workdir / "experiments" / f"gluon_{model}" / "results.json"
    record = json.loads(frame_path.read_text())[0]
    assert record["status"] == "completed", record["error"]
    assert record["metric_accuracy"] > 0.5 and record["model"] == "model/model.safetensors"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tensorboard_command_serves_the_experiment(tmp_path):
    from h3spark import tune

    tune.grid_search(lambda params, ctx: {"accuracy": params["x"]}, {"x": [1, 2]}, executor="threads",
                     experiment_dir=str(tmp_path / "exp"))
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "h3spark.cli._main", "tensorboard", str(tmp_path / "exp"), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + 90, None
        while body is None and time.monotonic() < deadline and process.poll() is None:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugins_listing", timeout=2).read()
            except OSError:
                time.sleep(0.5)
        assert body is not None, process.stdout.read().decode()[-2000:] if process.poll() is not None else "no answer"
        assert json.loads(body)["hparams"]["enabled"] and json.loads(body)["scalars"]["enabled"]
        runs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5).read())
        assert sum(run.startswith("trials/") for run in runs) == 2
    finally:
        process.terminate()
        process.wait(20)
    assert _processes_mentioning(str(tmp_path / "exp")) == [], "TensorBoard outlived 'h3spark tensorboard'"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if entry.isdigit() and text.encode() in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def test_tensorboard_command_rejects_a_missing_dir(tmp_path, capsys):
    assert main(["tensorboard", str(tmp_path / "nope")]) == 2
    assert "no such experiment dir" in capsys.readouterr().err


GPU_SCRIPT = """
import json, os, sys, time
from h3spark import tune
from h3spark.config import SparkConfig
from h3spark.spark import get_spark

script = sys.argv[1]
spark = get_spark(SparkConfig(master="local-cluster[1,2,1024]", conf={
    "spark.ui.enabled": False,
    "spark.worker.resource.gpu.amount": 2, "spark.worker.resource.gpu.discoveryScript": script,
    "spark.executor.resource.gpu.amount": 2, "spark.executor.resource.gpu.discoveryScript": script,
    "spark.task.resource.gpu.amount": 1}))

def train_fn(params, ctx):
    time.sleep(0.5)
    return {"accuracy": 1.0, "cuda": int(os.environ["CUDA_VISIBLE_DEVICES"]), "gpus": int(ctx.gpus[0])}

result = tune.grid_search(train_fn, {"x": [1, 2, 3, 4]}, spark=spark, experiment_dir=sys.argv[2])
print("RESULT " + result.results[["trial_id", "slot", "gpus", "metric_cuda", "metric_gpus", "started_at", "ended_at"]].to_json(orient="records"))
"""


def test_each_trial_gets_its_own_gpu_from_spark_task_resources(tmp_path):
    require(subprocess.run(["java", "-version"], capture_output=True).returncode == 0, "Java 17 is needed for Spark")
    discovery = tmp_path / "fake_gpus.sh"
    discovery.write_text('#!/bin/bash\necho \'{"name": "gpu", "addresses": ["0", "1"]}\'\n')
    discovery.chmod(0o755)
    script = tmp_path / "gpu_trials.py"
    script.write_text(GPU_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(discovery), str(tmp_path / "exp")], capture_output=True, text=True,
                          timeout=240, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stderr[-3000:]
    rows = json.loads(lines[0][len("RESULT "):])
    assert all(str(row["metric_cuda"]) == row["gpus"] == str(row["metric_gpus"]) for row in rows)
    assert {row["gpus"] for row in rows} == {"0", "1"}
    for a in rows:  # trials running at the same time never share a GPU
        for b in rows:
            if a is not b and a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"]:
                assert a["gpus"] != b["gpus"]
