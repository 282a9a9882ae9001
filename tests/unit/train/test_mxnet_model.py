"""The MXNet engine of the model contract: built from a spec, weights by layer, save/load, and
each training option checked by its effect on the weights (against the formula in numpy)."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest

from h3spark.errors import ConfigError, DataError
from h3spark.train.engines.model import TrainOptions, learning_rate, load_model
from h3spark.train.engines.mxnet_models import MXNetModel
from h3spark.train.engines.spec import ModelSpec, mlp_spec
from tests.conftest import require

CNN = {"input_shape": [1, 8, 8], "init": {"kind": "normal", "mean": 0.0, "std": 0.05}, "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 16, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "batchnorm"},
    {"type": "flatten"},
    {"type": "dense", "name": "hidden", "units": 64, "activation": "relu"},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "name": "logits", "units": 10}]}


@pytest.fixture(autouse=True)
def needs_mxnet():
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")


def tiny(use_bias: bool = True, hidden: bool = False) -> ModelSpec:
    """A dense model small enough to follow by hand: 4 features, 3 classes."""
    layers = [{"type": "dense", "name": "hidden", "units": 5, "activation": "tanh"}] if hidden else []
    layers.append({"type": "dense", "name": "logits", "units": 3, "use_bias": use_bias})
    return ModelSpec.from_dict({"input_shape": [4], "init": {"kind": "normal", "std": 0.5}, "layers": layers})


def batch(rows: int = 8, seed: int = 1, shape=(4,), classes: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, *shape)).astype(np.float32), rng.integers(0, classes, rows)


def norm(weights: dict[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(float((value.astype(np.float64) ** 2).sum()) for value in weights.values())))


def observed_rate(model: MXNetModel, features, labels) -> float:
    """The rate of one plain-sgd step: the weight change divided by the (known) gradient."""
    _, grads = model.gradients(features, labels)
    before = model.get_weights()
    model.train_step(features, labels)
    after = model.get_weights()
    change = np.concatenate([(before[name] - after[name]).ravel() for name in grads]).astype(np.float64)
    grad = np.concatenate([grads[name].ravel() for name in grads]).astype(np.float64)
    return float(change @ grad / (grad @ grad))


# --- building and weights ---------------------------------------------------------------------

def test_the_cnn_and_mlp_specs_build_with_the_specs_initial_weights():
    for spec in (ModelSpec.from_dict(CNN), mlp_spec([1, 8, 8], [32, 16], 10, dropout=0.1)):
        model = MXNetModel(spec, seed=3)
        expected, weights = spec.initial_weights(3), model.get_weights()
        assert list(weights) == list(expected)
        for name, value in expected.items():
            assert weights[name].dtype == np.float32
            np.testing.assert_array_equal(weights[name], value, err_msg=name)
        features, _ = batch(5, shape=(1, 8, 8))
        assert model.logits(features).shape == (5, 10)
        np.testing.assert_allclose(model.predict(features.reshape(5, 64)).sum(axis=1), 1.0, rtol=1e-5)
    assert not np.array_equal(MXNetModel(tiny(), seed=4).get_weights()["logits.weight"], tiny().initial_weights(3)["logits.weight"])


def test_weights_by_layer_subset_move_to_another_model():
    spec = ModelSpec.from_dict(CNN)
    source, target = MXNetModel(spec, seed=1), MXNetModel(spec, seed=2)
    conv = source.get_weights(["conv1"])
    assert sorted(conv) == ["conv1.bias", "conv1.weight"]
    target.set_weights(conv)
    after = target.get_weights()
    np.testing.assert_array_equal(after["conv1.weight"], conv["conv1.weight"])
    np.testing.assert_array_equal(after["hidden.weight"], spec.initial_weights(2)["hidden.weight"])
    target.set_weights(source.get_weights())
    features, _ = batch(6, shape=(1, 8, 8))
    np.testing.assert_allclose(target.logits(features), source.logits(features), atol=1e-6)
    with pytest.raises(ConfigError, match="no layer 'conv9'"):
        source.get_weights(["conv9"])


def test_set_weights_with_a_wrong_shape_or_name_is_a_data_error():
    model = MXNetModel(ModelSpec.from_dict(CNN))
    with pytest.raises(DataError, match=r"'hidden.weight' has shape \(64, 10\), but the model's is \(64, 256\)"):
        model.set_weights({"hidden.weight": np.zeros((64, 10))})
    with pytest.raises(DataError, match="'hidden.gamma' is not in this model"):
        model.set_weights({"hidden.gamma": np.zeros(64)})


def test_save_then_load_model_gives_the_same_predictions(tmp_path):
    model = MXNetModel(ModelSpec.from_dict(CNN), seed=5, options=TrainOptions(lr=0.05))
    features, labels = batch(16, shape=(1, 8, 8), classes=10)
    for _ in range(3):
        model.train_step(features, labels)  # moves batchnorm's running statistics too
    loaded = load_model(model.save(str(tmp_path / "cnn.safetensors")))
    assert isinstance(loaded, MXNetModel) and loaded.step == 3
    np.testing.assert_allclose(loaded.predict(features), model.predict(features), atol=1e-6)


def test_bad_batches_are_data_errors_naming_the_problem():
    model = MXNetModel(tiny())
    features, _ = batch(4)
    with pytest.raises(DataError, match=r"labels from 0 to 3"):
        model.train_step(features, np.array([0, 1, 2, 3]))
    with pytest.raises(DataError, match="4 rows of features but 3 labels"):
        model.gradients(features, np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"rows of shape \(4,\)"):
        model.logits(np.zeros((2, 5)))


# --- training options, each by its effect ------------------------------------------------------

def test_clipping_bounds_the_global_norm_of_the_update():
    features, labels = batch()
    model = MXNetModel(tiny(hidden=True), options=TrainOptions(optimizer="sgd", lr=1.0, clip_norm=0.05))
    _, grads = model.gradients(features, labels)
    assert norm(grads) > 0.05  # so the clip acts
    before = model.get_weights()
    model.train_step(features, labels)
    change = {name: before[name] - value for name, value in model.get_weights().items()}
    assert norm(change) == pytest.approx(0.05, rel=1e-4)
    for name, grad in grads.items():  # one scale for every weight (global), not a per-element clip
        np.testing.assert_allclose(change[name], grad * 0.05 / norm(grads), atol=1e-6)


def test_warmup_uses_the_stated_rates_then_the_step_schedule():
    features, labels = batch()
    options = TrainOptions(lr=0.2, warmup_steps=4, schedule="step", step_size=2, gamma=0.5)
    model = MXNetModel(tiny(), options=options)
    rates = [observed_rate(model, features, labels) for _ in range(8)]
    np.testing.assert_allclose(rates, [0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.1, 0.1], rtol=1e-3)


def test_the_cosine_schedule_reaches_min_lr_at_total_steps():
    features, labels = batch()
    options = TrainOptions(lr=0.1, schedule="cosine", total_steps=4, min_lr=0.01)
    model = MXNetModel(tiny(), options=options)
    rates = [observed_rate(model, features, labels) for _ in range(6)]
    expected = [0.01 + 0.09 * 0.5 * (1 + np.cos(np.pi * min(k / 4, 1))) for k in range(6)]
    np.testing.assert_allclose(rates, expected, rtol=1e-3)
    assert rates[-1] == pytest.approx(0.01, rel=1e-3)


def test_weight_decay_shrinks_weights_when_the_gradient_is_zero():
    model = MXNetModel(tiny(use_bias=False), options=TrainOptions(lr=0.5, weight_decay=0.1))
    start = model.get_weights()["logits.weight"]
    zeros = np.zeros((8, 4), np.float32)  # a zero input: the loss does not depend on the weights
    for _ in range(3):
        model.train_step(zeros, np.zeros(8, np.int64))
    np.testing.assert_allclose(model.get_weights()["logits.weight"], start * (1 - 0.5 * 0.1) ** 3, rtol=1e-5)


def follow(model: MXNetModel, steps: int, rule) -> None:
    """Train ``steps`` steps and check each against ``rule(weight, grad, state) -> new weight``."""
    expected = {name: value.astype(np.float64) for name, value in model.get_weights().items()}
    states: dict = {}
    for step in range(steps):
        features, labels = batch(seed=step)
        _, grads = model.gradients(features, labels)
        model.train_step(features, labels)
        for name, grad in grads.items():
            expected[name] = rule(expected[name], grad.astype(np.float64), states.setdefault(name, {}))
            np.testing.assert_allclose(model.get_weights()[name], expected[name], rtol=1e-4, atol=1e-6,
                                       err_msg=f"{name} after step {step}")


def test_sgd_momentum_follows_its_formula():
    def rule(weight, grad, state):
        state["mom"] = 0.9 * state.get("mom", 0.0) - 0.1 * (grad + 0.01 * weight)
        return weight + state["mom"]

    follow(MXNetModel(tiny(), options=TrainOptions(lr=0.1, momentum=0.9, weight_decay=0.01)), 4, rule)


def test_adam_follows_its_formula():
    def rule(weight, grad, state):
        t = state["t"] = state.get("t", 0) + 1
        state["m"] = 0.8 * state.get("m", 0.0) + 0.2 * grad
        state["v"] = 0.99 * state.get("v", 0.0) + 0.01 * grad ** 2
        rate = 0.01 * np.sqrt(1 - 0.99 ** t) / (1 - 0.8 ** t)
        return weight - rate * state["m"] / (np.sqrt(state["v"]) + 1e-8)

    follow(MXNetModel(tiny(), options=TrainOptions(optimizer="adam", lr=0.01, beta1=0.8, beta2=0.99)), 4, rule)


def test_dcasgd_with_momentum_follows_its_formula():
    def rule(weight, grad, state):
        previous = state.get("previous", weight)  # the backup starts as the first weight
        step = -0.1 * (grad + 0.5 * grad * grad * (weight - previous))
        state["mom"] = 0.5 * state.get("mom", 0.0) + step
        state["previous"] = weight
        return weight + state["mom"]

    options = TrainOptions(optimizer="dcasgd", lr=0.1, momentum=0.5, dcasgd_lambda=0.5)
    follow(MXNetModel(tiny(hidden=True), options=options), 4, rule)


def test_frozen_layers_keep_every_weight_until_unfrozen():
    spec = ModelSpec.from_dict(CNN)
    model = MXNetModel(spec, options=TrainOptions(lr=0.1, momentum=0.9))
    features, labels = batch(16, shape=(1, 8, 8), classes=10)
    model.freeze(["conv1", "batchnorm0"])
    before = model.get_weights()
    assert sorted(model.gradients(features, labels)[1]) == ["hidden.bias", "hidden.weight", "logits.bias", "logits.weight"]
    for _ in range(2):
        model.train_step(features, labels)
    after = model.get_weights()
    for name in before:
        same = np.array_equal(before[name], after[name])
        assert same == (spec.layer_of(name) in ("conv1", "batchnorm0")), name
    model.freeze(["conv1"], frozen=False)
    model.train_step(features, labels)
    assert not np.array_equal(model.get_weights()["conv1.weight"], after["conv1.weight"])


def test_gradients_change_no_weight_not_even_batchnorms_statistics():
    model = MXNetModel(ModelSpec.from_dict(CNN), options=TrainOptions(lr=0.1))
    features, labels = batch(16, shape=(1, 8, 8), classes=10)
    before = model.get_weights()
    loss, grads = model.gradients(features, labels)
    assert loss > 0 and sorted(grads) == sorted(set(before) - {"batchnorm0.running_mean", "batchnorm0.running_var"})
    for name, value in model.get_weights().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    model.train_step(features, labels)  # a step does move them
    assert not np.array_equal(model.get_weights()["batchnorm0.running_mean"], before["batchnorm0.running_mean"])


def test_a_kvstore_that_runs_the_optimizer_keeps_the_schedule_and_the_clip():
    import mxnet as mx

    features, labels = batch()
    options = TrainOptions(lr=0.2, warmup_steps=2, schedule="step", step_size=1, gamma=0.5)
    model = MXNetModel(tiny(), options=options)
    model.attach_kvstore(mx.kv.create("local"), update_on_kvstore=True)
    rates = [observed_rate(model, features, labels) for _ in range(4)]
    np.testing.assert_allclose(rates, [0.1, 0.2, 0.2, 0.1], rtol=1e-3)
    clipped = MXNetModel(tiny(), options=TrainOptions(lr=1.0, clip_norm=0.01))
    clipped.attach_kvstore(mx.kv.create("local"), update_on_kvstore=False)
    before = clipped.get_weights()
    clipped.train_step(features, labels)
    assert norm({name: before[name] - value for name, value in clipped.get_weights().items()}) == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(ConfigError, match="takes an MXNet KVStore"):
        model.attach_kvstore(3)
    with pytest.raises(ConfigError, match="update_on_kvstore=True"):
        model.attach_kvstore("dist_async", update_on_kvstore=False)


def test_the_scheduled_optimizer_survives_pickling_as_servers_receive_it():
    from h3spark.train.engines._mxnet_optim import optimizer_from_options

    options = TrainOptions(optimizer="dcasgd", lr=0.3, momentum=0.5, warmup_steps=3)
    optimizer = pickle.loads(pickle.dumps(optimizer_from_options(options, scheduled=True, first_step=1)))
    assert [optimizer.lr_scheduler(n) for n in (1, 2, 3)] == [learning_rate(options, k) for k in (1, 2, 3)]


# --- it learns ----------------------------------------------------------------------------------

def test_a_cnn_with_batchnorm_and_dropout_learns_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    features = (digits.data[order] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    labels = digits.target[order]
    model = MXNetModel(ModelSpec.from_dict(CNN), seed=0, options=TrainOptions(optimizer="adam", lr=0.01))
    for _ in range(3):
        for start in range(0, 1400, 32):
            model.train_step(features[start:start + 32], labels[start:start + 32])
    assert model.evaluate(features[1400:], labels[1400:])["accuracy"] >= 0.9
