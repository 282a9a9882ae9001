"""The torch engine's distillation steps and input gradients against numpy's (and MXNet's, in this
interpreter when it has MXNet): the same spec, seed and batches give the same loss and weights."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from h3spark.train.engines.model import TrainOptions, build_model, softmax
from h3spark.train.engines.spec import ModelSpec
from tests.conftest import require
from tests.integration.torch.test_torch_model import CNN

SPEC = ModelSpec.from_dict({"input_shape": [6], "init": {"kind": "normal", "std": 0.6}, "layers": [
    {"type": "dense", "name": "hidden", "units": 5, "activation": "tanh"},
    {"type": "dense", "name": "logits", "units": 3}]})


@pytest.fixture(autouse=True)
def _torch(torch_here):
    return torch_here


def batch(rows: int = 8, seed: int = 0, shape=(6,), classes: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, *shape)).astype(np.float32), softmax(rng.normal(0, 2, (rows, classes))), rng.integers(0, classes, rows)


def test_torch_distils_as_numpy_does():
    features, soft, labels = batch()
    options = TrainOptions(optimizer="adam", lr=0.02, clip_norm=0.5, weight_decay=0.01)
    torch_model, np_model = build_model("torch", SPEC, seed=4, options=options), build_model("numpy", SPEC, seed=4, options=options)
    for step in range(3):
        hard = None if step == 1 else labels
        assert torch_model.distill_step(features, soft, 3.0, hard, 0.5) == pytest.approx(
            np_model.distill_step(features, soft, 3.0, hard, 0.5), rel=1e-5)
    assert torch_model.step == 3
    for name, value in np_model.get_weights().items():
        np.testing.assert_allclose(torch_model.get_weights()[name], value, rtol=1e-4, atol=1e-6)


def test_torch_input_gradients_are_numpys_and_touch_no_weight_gradient():
    features, _, labels = batch()
    torch_model, np_model = build_model("torch", SPEC, seed=4), build_model("numpy", SPEC, seed=4)
    before = torch_model.get_weights()
    for temperature in (1.0, 5.0):
        np.testing.assert_allclose(torch_model.input_gradient(features, labels, temperature),
                                   np_model.input_gradient(features, labels, temperature), rtol=1e-4, atol=1e-7)
    assert all(param.grad is None for param in torch_model.network.parameters())
    assert torch_model.step == 0 and all(np.array_equal(before[k], v) for k, v in torch_model.get_weights().items())


def test_a_cnn_distils_in_torch_and_mxnet_alike_with_a_frozen_layer():
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed in this interpreter; the main .venv "
            "(scripts/setup.sh) holds mxnet and torch")
    spec = ModelSpec.from_dict({**CNN, "layers": [layer for layer in CNN["layers"] if layer["type"] != "dropout"]})
    features, soft, labels = batch(rows=6, shape=(1, 8, 8), classes=10)
    models = [build_model(engine, spec, seed=2, options=TrainOptions(lr=0.05)) for engine in ("torch", "mxnet")]
    for model in models:
        model.freeze(["conv1"])
        model.distill_step(features, soft, 2.0, labels, alpha=0.7)
    torch_weights, mx_weights = (model.get_weights() for model in models)
    np.testing.assert_array_equal(torch_weights["conv1.weight"], spec.initial_weights(2)["conv1.weight"])
    np.testing.assert_array_equal(mx_weights["conv1.weight"], spec.initial_weights(2)["conv1.weight"])
    for name in ("hidden.weight", "logits.weight", "logits.bias"):
        np.testing.assert_allclose(torch_weights[name], mx_weights[name], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(models[0].input_gradient(features, labels, 2.0), models[1].input_gradient(features, labels, 2.0),
                               rtol=1e-3, atol=1e-6)
