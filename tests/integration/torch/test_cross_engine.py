"""MXNet and PyTorch in one process: the same spec and seed give the same initial weights and the
same logits, and a model trained and saved by one engine predicts the same in the other."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.train.engines.model import TrainOptions, build_model, load_model
from h3spark.train.engines.spec import ModelSpec, mlp_spec
from tests.conftest import require
from tests.integration.torch.test_torch_model import CNN

# every other layer option: strides, [h, w] kernels, padded average and max pools, each activation
EVERY_LAYER = {"input_shape": [3, 9, 9], "init": "kaiming", "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 6, "kernel": [3, 2], "stride": 2, "padding": 1, "activation": "tanh"},
    {"type": "avgpool", "size": 3, "stride": 1, "padding": 1},
    {"type": "batchnorm", "name": "norm1", "momentum": 0.8, "epsilon": 0.001},
    {"type": "activation", "function": "softrelu"},
    {"type": "conv2d", "name": "conv2", "filters": 4, "kernel": 2, "activation": "sigmoid", "use_bias": False,
     "init": {"kind": "uniform", "low": -0.5, "high": 0.5}},
    {"type": "maxpool", "size": 3, "stride": 2, "padding": 1},
    {"type": "flatten"},
    {"type": "batchnorm", "name": "norm2"},
    {"type": "dense", "name": "hidden", "units": 7, "activation": "softrelu"},
    {"type": "activation", "function": "linear"},
    {"type": "dense", "name": "logits", "units": 5}]}
SPECS = {"cnn": ModelSpec.from_dict(CNN), "every_layer": ModelSpec.from_dict(EVERY_LAYER),
         "mlp": mlp_spec([64], [32, 16], classes=10, dropout=0.1, activation="tanh")}


@pytest.fixture(autouse=True)
def _engines(torch_here):
    try:
        import mxnet  # noqa: F401
    except ImportError:
        require(False, "mxnet is not installed in this interpreter; the main .venv (scripts/setup.sh) holds mxnet and torch")


def rows(spec: ModelSpec, count: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (count, *spec.input_shape)).astype(np.float32)


def with_trained_statistics(spec: ModelSpec, weights: dict, seed: int = 5) -> dict:
    """``weights`` with batchnorm's four weights drawn away from 1 and 0, so that eval mode's
    use of them (and of epsilon) shows in the logits."""
    rng = np.random.default_rng(seed)
    changed = dict(weights)
    for name, value in weights.items():
        if spec.layer(spec.layer_of(name)).type == "batchnorm":
            low = 0.5 if name.endswith(("running_var", ".weight")) else -0.5
            changed[name] = rng.uniform(low, low + 1.0, value.shape).astype(np.float32)
    return changed


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_same_spec_and_seed_give_the_same_weights_and_logits(name):
    spec = SPECS[name]
    mxnet_model, torch_model = build_model("mxnet", spec, seed=3), build_model("torch", spec, seed=3)
    mx_weights, torch_weights = mxnet_model.get_weights(), torch_model.get_weights()
    assert list(mx_weights) == list(torch_weights) == list(spec.param_shapes())
    assert all(np.array_equal(mx_weights[key], torch_weights[key]) for key in mx_weights)
    features = rows(spec)
    np.testing.assert_allclose(mxnet_model.logits(features), torch_model.logits(features), rtol=0, atol=1e-5)
    moved = with_trained_statistics(spec, mx_weights)
    mxnet_model.set_weights(moved)
    torch_model.set_weights(moved)
    np.testing.assert_allclose(mxnet_model.logits(features), torch_model.logits(features), rtol=0, atol=1e-5)


@pytest.mark.parametrize("trained_by, loaded_by", [("mxnet", "torch"), ("torch", "mxnet")])
def test_a_model_trained_and_saved_by_one_engine_predicts_the_same_in_the_other(trained_by, loaded_by, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    features = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    trained = build_model(trained_by, SPECS["cnn"], seed=0, options=TrainOptions(optimizer="sgd", lr=0.1, momentum=0.9))
    for start in range(0, 1024, 64):
        trained.train_step(features[start:start + 64], digits.target[start:start + 64])
    path = trained.save(str(tmp_path / f"{trained_by}.safetensors"))
    loaded = load_model(path, engine=loaded_by)
    assert loaded.engine == loaded_by and loaded.step == trained.step == 16
    held_out = features[1024:]
    expected, got = trained.predict(held_out), loaded.predict(held_out)
    assert (expected.argmax(axis=1) == digits.target[1024:]).mean() > 0.5  # it learned: the comparison means something
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
