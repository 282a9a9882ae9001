"""TorchModel on CUDA, in this interpreter: the spec's initial weights, the CPU model's logits, and
training (dropout's generator and frozen layers included) on the GPU.

Skips without CUDA. Runs on a GPU machine with torch: ``python -m pytest tests/integration/gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.train.engines.model import TrainOptions
from h3spark.train.engines.spec import ModelSpec

CNN = ModelSpec.from_dict({"input_shape": [1, 8, 8], "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 16, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "batchnorm"},
    {"type": "flatten"},
    {"type": "dense", "name": "hidden", "units": 64, "activation": "relu"},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "name": "logits", "units": 10}]})


@pytest.fixture
def cuda_torch():
    """torch with a CUDA device, TF32 off (so the GPU's float32 matches the CPU's within 1e-4)."""
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed in this interpreter")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch (TorchModel on CUDA needs a GPU machine)")
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield torch
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def separable_images(rows: int = 512, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (10, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, rows)
    return centers[labels] + rng.normal(0, 0.5, (rows, 1, 8, 8)).astype(np.float32), labels


def test_a_cuda_model_starts_from_the_spec_weights_and_computes_the_cpu_logits(cuda_torch):
    from h3spark.train.engines.torch_model import TorchModel

    gpu, cpu = TorchModel(CNN, seed=3, device="cuda"), TorchModel(CNN, seed=3, device="cpu")
    assert next(gpu.network.parameters()).is_cuda
    initial = CNN.initial_weights(3)
    assert all(np.array_equal(value, initial[name]) for name, value in gpu.get_weights().items())
    features, _ = separable_images(64)
    np.testing.assert_allclose(gpu.logits(features), cpu.logits(features), rtol=0, atol=1e-4)


def test_a_cuda_model_trains_with_dropout_and_a_frozen_layer(cuda_torch):
    from h3spark.train.engines.torch_model import TorchModel

    model = TorchModel(CNN, seed=0, options=TrainOptions(optimizer="adam", lr=0.01, clip_norm=5.0), device="cuda")
    model.freeze(["conv1"])
    features, labels = separable_images()
    before = model.get_weights()
    for start in range(0, 512, 64):
        model.train_step(features[start:start + 64], labels[start:start + 64])
    after = model.get_weights()
    assert np.array_equal(after["conv1.weight"], before["conv1.weight"])
    assert not np.array_equal(after["hidden.weight"], before["hidden.weight"])
    assert model.evaluate(features, labels)["accuracy"] > 0.5
