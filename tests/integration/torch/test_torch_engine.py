"""The torch engine with gloo on 2 CPU processes: local launch (no Spark, as on the GPU machine),
the Spark barrier launch, failure + resume to identical weights, and a plain DDP script under launch."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from h3spark.config import H3SparkConfig
from h3spark.storage import resolve_published
from h3spark.train import latest_checkpoint, train_from_config

ROOT = Path(__file__).resolve().parents[3]
TRAINING = {"engine": "torch", "workers": 2, "epochs": 2, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "seed": 3,
            "checkpoint_interval": 8, "validation_split": "test", "params": {"hidden": [32], "classes": 4}}


def write_config(path: Path, dataset_uri: str, name: str, **training) -> Path:
    path.write_text(json.dumps({"name": name, "dataset": {"uri": dataset_uri}, "training": {**TRAINING, **training}}))
    return path


def h3spark_cli(python: str, *args: str, env: dict | None = None, timeout_s: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "h3spark.cli._main", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=timeout_s)


def read_tensors(checkpoint_uri: str) -> dict[str, np.ndarray]:
    """The model tensors of a torch checkpoint, read with numpy only (this venv may lack torch)."""
    folder = Path(resolve_published(checkpoint_uri)[len("file://"):])
    if (folder / "model.npz").exists():
        with np.load(folder / "model.npz", allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    data = (folder / "model.safetensors").read_bytes()
    size = int.from_bytes(data[:8], "little")
    header, body = json.loads(data[8:8 + size]), data[8 + size:]
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    return {name: np.frombuffer(body[info["data_offsets"][0]:info["data_offsets"][1]], dtypes[info["dtype"]]).reshape(info["shape"])
            for name, info in header.items() if name != "__metadata__"}


def test_local_launch_trains_then_a_failed_run_resumes_to_the_same_weights(torch_python, blobs, tmp_path):
    workdir = str(tmp_path / "work")
    straight = h3spark_cli(torch_python, "train", str(write_config(tmp_path / "straight.json", blobs, "straight", launcher="local")),
                           "--workdir", workdir)
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert "torch gloo workers=2 gpus=0" in straight.stdout
    accuracy = float(straight.stdout.split("validation accuracy", 1)[1].split()[0])
    assert accuracy > 0.9, straight.stdout
    assert re.search(r"run\s+1, from step 0", straight.stdout), straight.stdout
    root = Path(workdir, "checkpoints", "straight")
    # the last 3 (keep_checkpoints' default) and the best; step 8's mean loss is the highest of the run
    assert os.listdir(root) == ["run-0001"]
    assert sorted(os.listdir(root / "run-0001")) == [f"step-{s:08d}" for s in (16, 24, 32)]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(Path(workdir, "logs", "straight")))
    events.Reload()
    losses = events.Scalars("train/loss")  # every 10 steps, read back without a per-step device sync
    assert [event.step for event in losses] == [10, 20, 30] and all(np.isfinite(event.value) for event in losses)
    assert [event.step for event in events.Scalars("train/samples_per_s")] == [32]

    broken = write_config(tmp_path / "broken.json", blobs, "broken", launcher="local")
    failed = h3spark_cli(torch_python, "train", str(broken), "--workdir", workdir, env={"H3SPARK_FAIL_AT_STEP": "13"})
    assert failed.returncode != 0
    assert "worker 1" in failed.stderr and "failing on purpose at step 13" in failed.stderr, failed.stderr[-3000:]
    assert latest_checkpoint(f"file://{workdir}/checkpoints/broken").endswith("run-0001/step-00000008")
    resumed = h3spark_cli(torch_python, "train", str(broken), "--workdir", workdir, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step 8 of run 1" in resumed.stderr and re.search(r"run\s+1, resumed from step 8", resumed.stdout)
    expected = read_tensors(latest_checkpoint(f"file://{root}"))
    got = read_tensors(latest_checkpoint(f"file://{workdir}/checkpoints/broken"))
    last = Path(resolve_published(f"file://{workdir}/checkpoints/broken/run-0001/step-00000032")[len("file://"):])
    meta = json.loads((last / "checkpoint.json").read_text())
    assert meta["engine"] == "torch" and meta["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert (meta["run"], meta["step"]) == (1, 32) and meta["loss"] > 0
    assert expected.keys() == got.keys() and expected
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def test_spark_barrier_launch_trains_with_gloo(spark, torch_python, blobs, workdir):
    config = H3SparkConfig(name="barrier", dataset={"uri": blobs}, training=TRAINING)
    summary, results = train_from_config(config, workdir, spark=spark, echo=False,
                                         env={"H3SPARK_WORKER_PYTHON": torch_python})
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert {r["steps"] for r in results} == {2 * 1024 // 64}  # even shards: 16 batches per epoch each
    assert {r["device"] for r in results} == {"cpu"}
    lead = next(r for r in results if r["rank"] == 0)
    assert lead["val_accuracy"] > 0.9
    assert dict(summary)["engine"] == "torch gloo workers=2 gpus=0"
    assert read_tensors(lead["checkpoint"])  # model tensors readable without pickle


def test_cli_launch_kind_torch_local_runs_a_plain_ddp_script(torch_python):
    done = h3spark_cli(torch_python, "launch", "--kind", "torch", "--local", "-n", "2", "--",
                       torch_python, str(ROOT / "examples" / "torch_ddp_mlp.py"), "--rows", "4096", "--epochs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line.split("RESULT ", 1)[1]) for line in done.stdout.splitlines() if "RESULT " in line]
    assert len(results) == 1 and results[0]["world_size"] == 2
    assert results[0]["accuracy"] > 0.9
    assert "h3spark launch: 2 workers finished" in done.stdout


def test_example_conf_ingests_on_spark_then_trains_and_resumes(spark, torch_python, workdir, monkeypatch, capsys):
    from h3spark.cli import main

    monkeypatch.setenv("H3SPARK_WORKER_PYTHON", torch_python)
    conf = str(ROOT / "conf" / "train_torch_example.yaml")
    assert main(["run", conf, "--workdir", str(workdir), "--set", "training.epochs=1"]) == 0
    first = latest_checkpoint(f"file://{workdir}/checkpoints/train_torch_example")
    assert main(["train", conf, "--workdir", str(workdir), "--resume", "--set", "training.epochs=2"]) == 0
    second = latest_checkpoint(f"file://{workdir}/checkpoints/train_torch_example")
    assert int(second.rsplit("-", 1)[1]) == 2 * int(first.rsplit("-", 1)[1])
    out = capsys.readouterr().out
    assert "h3spark train train_torch_example: done" in out and "torch gloo workers=2 gpus=0" in out


TORCH_BATCHES_CHECK = """
import sys
import numpy as np
import torch
from h3spark.errors import UsageError
from h3spark.feed import DataIterator, TorchBatches

data = DataIterator(sys.argv[1], batch_size=100, shuffle=True, seed=1, read_threads=2)
plain = [(x.clone(), y.clone()) for x, y in TorchBatches(data)]
on_cpu = list(TorchBatches(data, device="cpu"))  # no CUDA device: never pinned
assert len(plain) == len(on_cpu) == len(data)
assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(plain, on_cpu))
assert not TorchBatches(data, device="cpu").pin_memory
try:
    TorchBatches(data, pin_memory=True)
except UsageError as error:
    assert "needs CUDA" in str(error) and "pin_memory" in str(error), error
else:
    assert torch.cuda.is_available(), "pin_memory=True without CUDA was accepted"
print("ok", len(plain))
"""


def test_torch_batches_on_cpu_and_pinning_without_cuda(torch_python, blobs):
    done = subprocess.run([torch_python, "-c", TORCH_BATCHES_CHECK, blobs], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", "21"]  # 2048 train rows in batches of 100


def test_a_torch_worker_refuses_labels_beyond_the_model_classes(torch_python, blobs, tmp_path):
    """The driver refuses first (tests/unit/train/test_labels.py); this is the engine's own check, on a
    worker started by distributed() directly."""
    from h3spark.errors import JobFailedError
    from h3spark.train import distributed, worker_settings

    config = H3SparkConfig(name="few", dataset={"uri": blobs}, training={**TRAINING, "workers": 1, "params": {"classes": 3}})
    settings = worker_settings(config, tmp_path / "work", resume=False)
    with pytest.raises(JobFailedError, match=r"(?s)the labels of split 'train' of .* run from 0 to 3, but "
                                              r"training.params.classes is 3"):
        distributed("h3spark.train.engines.torch:train_worker", num_workers=1, framework="torch", args=(settings,),
                    launcher="local", echo=False, env={"H3SPARK_WORKER_PYTHON": torch_python})
    assert latest_checkpoint(f"file://{tmp_path}/work/checkpoints/few") is None  # its run (reserved by worker_settings) has none


def test_train_tensors_steps_as_train_step_on_tensors_fed_as_they_are(torch_here):
    """The engine's loop hands TorchModel the tensors TorchBatches made (flat rows, already on the
    device): the same step as train_step on numpy, with the loss left on the device."""
    from h3spark.errors import DataError
    from h3spark.train.engines.model import TrainOptions, build_model
    from h3spark.train.engines.spec import ModelSpec
    from tests.integration.torch.test_torch_model import CNN

    torch = torch_here
    spec = ModelSpec.from_dict({**CNN, "layers": [layer for layer in CNN["layers"] if layer["type"] != "dropout"]})
    options = TrainOptions(lr=0.1, momentum=0.9)
    by_numpy, by_tensors = build_model("torch", spec, seed=1, options=options), build_model("torch", spec, seed=1, options=options)
    rng = np.random.default_rng(0)
    features, labels = rng.normal(0, 1, (16, 64)).astype(np.float32), rng.integers(0, 10, 16)
    for _ in range(2):
        expected = by_numpy.train_step(features, labels)
        loss = by_tensors.train_tensors(torch.from_numpy(features), torch.from_numpy(labels))
        assert torch.is_tensor(loss) and loss.dim() == 0 and not loss.requires_grad
        assert float(loss) == pytest.approx(expected, abs=1e-6)
    assert by_numpy.step == by_tensors.step == 2
    for name, value in by_numpy.get_weights().items():
        np.testing.assert_allclose(by_tensors.get_weights()[name], value, rtol=0, atol=1e-6, err_msg=name)
    with pytest.raises(DataError, match=r"the model takes rows of shape \(1, 8, 8\) \(64 values\); got a batch of shape \(4, 5\)"):
        by_tensors.train_tensors(torch.zeros(4, 5), torch.zeros(4))
    with pytest.raises(DataError, match="the batch has 4 rows of features but 3 labels"):
        by_tensors.train_tensors(torch.zeros(4, 64), torch.zeros(3))
