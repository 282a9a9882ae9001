"""Stages (h3spark.train.engines.stage, torch): a cut model computes what the whole model computes;
with batches in flight, the backward pass uses the current weights (none), the forward's weights
(stash) or those plus DC-ASGD's compensation for the true delay (dcasgd); delays are recorded; the
stash holds one copy per version in flight and is freed; bad calls are refused."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.errors import ConfigError, DataError
from h3spark.train.engines.model import TrainOptions
from h3spark.train.engines.spec import ModelSpec
from h3spark.train.engines.stage import build_stage, mean_cross_entropy, percentile, stage_spec
from h3spark.train.engines.torch_model import TorchModel

SPEC = ModelSpec.from_dict({"input_shape": [1, 6, 6], "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 3, "kernel": 3, "padding": 1, "activation": "relu"},
    {"type": "maxpool", "name": "pool1", "size": 2}, {"type": "flatten", "name": "flat"},
    {"type": "dense", "name": "hidden", "units": 8, "activation": "tanh"},
    {"type": "dense", "name": "logits", "units": 4}]})
MLP = ModelSpec.from_dict({"input_shape": [5], "layers": [
    {"type": "dense", "name": "hidden", "units": 6, "activation": "tanh"}, {"type": "dense", "name": "logits", "units": 3}]})
SGD = TrainOptions(optimizer="sgd", lr=0.5)


def data(rows: int, features: int, classes: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, features)).astype(np.float32), rng.integers(0, classes, rows)


def test_a_cut_model_starts_and_steps_as_the_whole_model():
    x, y = data(8, 36, 4, 0)
    whole = TorchModel(SPEC, seed=3, options=SGD)
    first = build_stage("torch", SPEC, ["conv1", "pool1"], seed=3, options=SGD)
    last = build_stage("torch", SPEC, ["flat", "hidden", "logits"], seed=3, options=SGD)
    logits = last.forward("b", first.forward("b", x))
    np.testing.assert_allclose(logits, whole.logits(x), atol=1e-5)
    loss, grad = mean_cross_entropy(logits, y)
    assert first.backward("b", last.backward("b", grad)) is None  # the first stage returns no input gradient
    assert loss == pytest.approx(whole.train_step(x, y), abs=1e-5)
    weights = whole.get_weights()
    for name, value in {**first.get_weights(), **last.get_weights()}.items():
        np.testing.assert_allclose(value, weights[name], atol=1e-6, err_msg=name)
    assert first.delays == {0: 1} and last.version == 1


def _two_in_flight(compensation: str, options: TrainOptions = SGD):
    """Batches a and b forward at version 0; a's backward (update 1), then b's (delay 1)."""
    (xa, ya), (xb, yb) = data(4, 5, 3, 1), data(4, 5, 3, 2)
    stage = build_stage("torch", MLP, ["hidden", "logits"], seed=0, options=options, compensation=compensation)
    grads = {key: mean_cross_entropy(stage.forward(key, x), y)[1] for key, x, y in (("a", xa, ya), ("b", xb, yb))}
    assert stage.in_flight == 2
    stage.backward("a", grads["a"])
    after_a = stage.get_weights()
    stage.backward("b", grads["b"])
    return stage, after_a, (xa, ya), (xb, yb)


def _gradients_at(weights: dict, x, y) -> dict:
    model = TorchModel(MLP, seed=0)
    model.set_weights(weights)
    return model.gradients(x, y)[1]


def test_weight_stashing_applies_the_gradient_of_the_weights_the_forward_pass_used():
    stage, after_a, _, (xb, yb) = _two_in_flight("stash")
    initial = MLP.initial_weights(0)
    expected = {name: after_a[name] - 0.5 * grad for name, grad in _gradients_at(initial, xb, yb).items()}
    for name, value in stage.get_weights().items():
        np.testing.assert_allclose(value, expected[name], atol=1e-5, err_msg=name)
    assert stage.delays == {0: 1, 1: 1} and stage.stashed_versions == 0


def test_without_compensation_the_backward_pass_reads_the_current_weights():
    stash, _, _, _ = _two_in_flight("stash")
    none, after_a, _, (xb, yb) = _two_in_flight("none")
    # hidden.weight's gradient goes back through logits.weight: now the updated one, so it differs from stashing
    assert not np.allclose(none.get_weights()["hidden.weight"], stash.get_weights()["hidden.weight"], atol=1e-6)
    # logits.weight's gradient needs only the kept activations and the sentinel's gradient: the same
    np.testing.assert_allclose(none.get_weights()["logits.weight"], stash.get_weights()["logits.weight"], atol=1e-6)
    assert none.stashed_versions == 0


def test_dcasgd_compensates_the_true_delay_from_the_stash_of_the_batch_s_forward_version():
    options = TrainOptions(optimizer="sgd", lr=0.5, dcasgd_lambda=2.0)
    stage, after_a, _, (xb, yb) = _two_in_flight("dcasgd", options)
    initial = MLP.initial_weights(0)
    for name, grad in _gradients_at(initial, xb, yb).items():
        compensated = grad + 2.0 * grad * grad * (after_a[name] - initial[name])
        np.testing.assert_allclose(stage.get_weights()[name], after_a[name] - 0.5 * compensated, atol=1e-5, err_msg=name)
    stash, _, _, _ = _two_in_flight("stash", options)
    assert not np.allclose(stage.get_weights()["hidden.weight"], stash.get_weights()["hidden.weight"], atol=1e-6)


def test_the_stash_keeps_one_copy_per_version_in_flight_and_forget_frees_it():
    stage = build_stage("torch", MLP, ["hidden", "logits"], seed=0, options=SGD, compensation="stash")
    x, y = data(4, 5, 3, 0)
    stage.forward("a", x)
    stage.forward("b", x)  # same version: the same copy
    assert stage.stashed_versions == 1
    stage.backward("a", mean_cross_entropy(stage.forward("c", x), y)[1] * 0)  # c is at version 0 too
    stage.forward("d", x)  # version 1: a second copy
    assert stage.stashed_versions == 2 and stage.in_flight == 3
    assert stage.forget("b") and stage.forget("c") and not stage.forget("c")
    assert stage.stashed_versions == 1 and stage.pending_keys() == ["d"]
    stage.forward("eval", x, train=False)  # inference keeps nothing
    assert stage.in_flight == 1


def test_bad_calls_are_refused_with_what_to_do():
    stage = build_stage("torch", MLP, ["hidden", "logits"], seed=0, options=SGD)
    x, _ = data(2, 5, 3, 0)
    stage.forward("a", x)
    with pytest.raises(DataError, match="already in flight"):
        stage.forward("a", x)
    with pytest.raises(DataError, match="no forward pass in flight"):
        stage.backward("z", np.zeros((2, 3), np.float32))
    with pytest.raises(DataError, match=r"takes rows of shape \(5,\)"):
        stage.forward("b", np.zeros((2, 4), np.float32))
    with pytest.raises(DataError, match="gradient .* has shape"):
        stage.backward("a", np.zeros((2, 7), np.float32))
    with pytest.raises(ConfigError, match="compensation: dcasgd"):
        build_stage("torch", MLP, ["hidden"], options=TrainOptions(optimizer="dcasgd"))
    with pytest.raises(ConfigError, match="must be one of"):
        build_stage("torch", MLP, ["hidden"], compensation="later")
    with pytest.raises(ConfigError, match="no stage engine"):
        build_stage("numpy", MLP, ["hidden"])


def test_a_stage_holds_consecutive_layers_in_order():
    assert stage_spec(SPEC, ["pool1", "flat"]).input_shape == (3, 6, 6)
    with pytest.raises(ConfigError, match="consecutive"):
        stage_spec(SPEC, ["conv1", "flat"])
    with pytest.raises(ConfigError, match="no layer 'dense9'"):
        stage_spec(SPEC, ["dense9"])


def test_percentiles_of_a_delay_distribution():
    assert percentile({0: 50, 3: 49, 9: 1}, 50) == 0 and percentile({0: 50, 3: 49, 9: 1}, 99) == 3
    assert percentile({0: 50, 3: 49, 9: 1}, 100) == 9 and percentile({}, 50) is None


@pytest.mark.parametrize("compensation", ["none", "stash", "dcasgd"])
def test_the_mxnet_stage_steps_as_the_torch_stage_with_batches_in_flight(compensation):
    options = TrainOptions(optimizer="sgd", lr=0.5, momentum=0.5, dcasgd_lambda=2.0)
    layers = ["conv1", "pool1", "flat", "hidden", "logits"]
    (xa, ya), (xb, yb) = data(4, 36, 4, 1), data(4, 36, 4, 2)
    stages = [build_stage(engine, SPEC, layers, seed=0, options=options, compensation=compensation)
              for engine in ("mxnet", "torch")]
    for stage in stages:
        grads = [mean_cross_entropy(stage.forward(key, x), y)[1] for key, x, y in (("a", xa, ya), ("b", xb, yb))]
        stage.backward("a", grads[0])
        stage.backward("b", grads[1])  # one update late
    mxnet, torch = (stage.get_weights() for stage in stages)
    for name, value in torch.items():
        np.testing.assert_allclose(mxnet[name], value, atol=1e-5, err_msg=name)
    assert stages[0].delays == {0: 1, 1: 1} and stages[0].stashed_versions == 0


def test_the_mxnet_stage_passes_the_input_gradient_back():
    first = build_stage("mxnet", SPEC, ["conv1", "pool1"], seed=3, options=SGD)
    last = build_stage("mxnet", SPEC, ["flat", "hidden", "logits"], seed=3, options=SGD)
    x, y = data(8, 36, 4, 0)
    whole = TorchModel(SPEC, seed=3, options=SGD)
    logits = last.forward("b", first.forward("b", x))
    np.testing.assert_allclose(logits, whole.logits(x), atol=1e-5)
    assert first.backward("b", last.backward("b", mean_cross_entropy(logits, y)[1])) is None
    whole.train_step(x, y)
    for name, value in {**first.get_weights(), **last.get_weights()}.items():
        np.testing.assert_allclose(value, whole.get_weights()[name], atol=1e-5, err_msg=name)
