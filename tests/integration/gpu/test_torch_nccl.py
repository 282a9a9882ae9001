"""The torch engine with NCCL, one process per GPU, launched locally (the GPU machine has no Java).

Skips without CUDA. Runs on a GPU machine with torch: ``python -m pytest tests/integration/gpu``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.storage import describe_splits, publishing, resolve_published, write_manifest

ROOT = Path(__file__).resolve().parents[3]
GPU_PROBE = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"


def cuda_python() -> tuple[str, int]:
    """An interpreter with torch that sees CUDA, and its GPU count; skip when there is none."""
    for python in filter(None, (os.environ.get("H3SPARK_TORCH_PYTHON"), sys.executable, str(ROOT / ".venv-torch/bin/python"))):
        if not Path(python).exists():
            continue
        probe = subprocess.run([python, "-c", GPU_PROBE], capture_output=True, text=True)
        if probe.returncode == 0 and int(probe.stdout.strip() or 0) > 0:
            return python, int(probe.stdout.strip())
    pytest.skip("no CUDA device visible to torch (the NCCL path needs a GPU machine)")


def publish_images(root: Path, rows: int = 8192) -> str:
    """28x28 'images' of 10 separable classes as fixed_size_binary features."""
    uri = f"file://{root}/images"
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1, (10, 784)).astype(np.float32)
    labels = rng.integers(0, 10, rows)
    values = centers[labels] + rng.normal(0, 1, (rows, 784)).astype(np.float32)
    with publishing(uri) as tmp_uri:
        folder = Path(tmp_uri[len("file://"):])
        folder.mkdir(parents=True)
        features = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * 784), rows, [None, pa.py_buffer(values.tobytes())])
        pq.write_table(pa.table({"features": features, "label": pa.array(labels.astype(np.int64))}),
                       folder / "part-00000.parquet", row_group_size=2048, compression="none")
        write_manifest(tmp_uri, {"rows": rows, "features": "features", "label": "label", "splits": describe_splits(tmp_uri),
                                 "columns": {"features": {"dtype": "float32", "shape": [784], "encoding": "binary"},
                                             "label": {"dtype": "int64", "shape": []}}})
    return uri


def test_engine_trains_with_nccl_one_process_per_gpu_and_resumes(tmp_path):
    python, gpus = cuda_python()
    gpus = min(gpus, 2)
    config = tmp_path / "gpu.json"
    config.write_text(json.dumps({"name": "gpu", "dataset": {"uri": publish_images(tmp_path)}, "training": {
        "engine": "torch", "workers": gpus, "gpus": gpus, "launcher": "local", "epochs": 1, "batch_size": 256,
        "lr": 0.05, "momentum": 0.9, "checkpoint_interval": 5, "params": {"hidden": [256], "classes": 10}}}))
    run = lambda *extra: subprocess.run([python, "-m", "h3spark.cli._main", "train", str(config), "--workdir", str(tmp_path / "w"), *extra],  # noqa: E731
                                        capture_output=True, text=True, cwd=ROOT, timeout=300)
    first = run()
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"torch nccl workers={gpus} gpus={gpus}" in first.stdout
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "w" / "logs" / "gpu"))
    events.Reload()
    losses = events.Scalars("train/loss")  # copied back from the GPU asynchronously, written later
    assert losses and all(event.step % 10 == 0 and np.isfinite(event.value) for event in losses)
    resumed = run("--resume", "--set", "training.epochs=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from step" in resumed.stderr and "of run 1" in resumed.stderr
    from h3spark.train import latest_checkpoint

    last_uri = latest_checkpoint(f"file://{tmp_path}/w/checkpoints/gpu")
    last = json.loads((Path(resolve_published(last_uri)[len("file://"):]) / "checkpoint.json").read_text())
    assert last["engine"] == "torch" and last["step"] == 2 * (8192 // gpus // 256)


def test_plain_ddp_script_runs_on_nccl_under_launch(tmp_path):
    python, gpus = cuda_python()
    done = subprocess.run([python, "-m", "h3spark.cli._main", "launch", "--kind", "torch", "--local", "-n", str(min(gpus, 2)), "--",
                           python, str(ROOT / "examples" / "torch_ddp_mlp.py"), "--cuda", "--rows", "8192"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert result["accuracy"] > 0.9


PINNED_CHECK = """
import sys
import torch
from h3spark.feed import DataIterator, TorchBatches

data = DataIterator(sys.argv[1], batch_size=512, shuffle=True, seed=2)
pinned = TorchBatches(data, device="cuda")
assert pinned.pin_memory
on_gpu = [(x.cpu(), y.cpu()) for x, y in pinned]
on_host = list(TorchBatches(data))
assert len(on_gpu) == len(on_host) == len(data)
assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(on_gpu, on_host))
print("ok", len(on_gpu))
"""


def test_pinned_batches_reach_the_gpu_unchanged(tmp_path):
    python, _ = cuda_python()
    uri = publish_images(tmp_path, rows=4096)
    done = subprocess.run([python, "-c", PINNED_CHECK, uri], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", "8"]
