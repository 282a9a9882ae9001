"""Distillation steps and input gradients in the model contract: the one loss formula (losses.py)
checked against finite differences, the numpy engine against it, MXNet against numpy, and every
bad argument refused. (torch against numpy: tests/integration/torch/test_torch_distill.py.)"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from h3spark.errors import DataError
from h3spark.train.engines.losses import cross_entropy_rows, distillation_loss
from h3spark.train.engines.model import TrainOptions, build_model, softmax
from h3spark.train.engines.spec import ModelSpec
from tests.conftest import require

SPEC = ModelSpec.from_dict({"input_shape": [6], "init": {"kind": "normal", "std": 0.6}, "layers": [
    {"type": "dense", "name": "hidden", "units": 5, "activation": "tanh"},
    {"type": "dense", "name": "logits", "units": 3}]})


def batch(rows: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 6)).astype(np.float32)
    soft = softmax(rng.normal(0, 2, (rows, 3)), 1.0)
    return features, soft, rng.integers(0, 3, rows)


def numeric_gradient(function, point: np.ndarray, step: float = 1e-5) -> np.ndarray:
    grad = np.zeros_like(point, dtype=np.float64)
    for index in np.ndindex(point.shape):
        up, down = point.astype(np.float64).copy(), point.astype(np.float64).copy()
        up[index] += step
        down[index] -= step
        grad[index] = (function(up) - function(down)) / (2 * step)
    return grad


# --- the formulas ------------------------------------------------------------------------------

@pytest.mark.parametrize("labelled, alpha, temperature", [(True, 0.7, 4.0), (False, 0.7, 2.5), (True, 0.0, 3.0), (True, 1.0, 1.0)])
def test_the_distillation_gradient_is_the_derivative_of_its_loss(labelled, alpha, temperature):
    rng = np.random.default_rng(1)
    logits, soft, labels = rng.normal(0, 3, (5, 4)), softmax(rng.normal(0, 2, (5, 4))), rng.integers(0, 4, 5)
    hard = labels if labelled else None
    _, grad = distillation_loss(logits, soft, temperature, hard, alpha)
    numeric = numeric_gradient(lambda z: distillation_loss(z, soft, temperature, hard, alpha)[0], logits)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_the_distillation_loss_is_hintons_formula():
    rng = np.random.default_rng(2)
    logits, soft, labels = rng.normal(0, 3, (6, 4)), softmax(rng.normal(0, 2, (6, 4))), rng.integers(0, 4, 6)
    q, p = softmax(logits, 5.0).astype(np.float64), softmax(logits).astype(np.float64)
    expected = 0.8 * 25 * -(soft * np.log(q)).sum(axis=1).mean() + 0.2 * -np.log(p[np.arange(6), labels]).mean()
    assert distillation_loss(logits, soft, 5.0, labels, 0.8)[0] == pytest.approx(expected, rel=1e-5)
    # without labels, the soft term alone, whatever alpha says
    assert distillation_loss(logits, soft, 5.0, None, 0.3)[0] == pytest.approx(25 * -(soft * np.log(q)).sum(axis=1).mean(), rel=1e-5)


def test_each_rows_cross_entropy_gradient_is_its_own_losss():
    rng = np.random.default_rng(3)
    logits, labels = rng.normal(0, 3, (4, 5)), rng.integers(0, 5, 4)
    _, grad = cross_entropy_rows(logits, labels, temperature=3.0)
    total = numeric_gradient(lambda z: 4 * cross_entropy_rows(z, labels, 3.0)[0], logits)  # the rows' sum
    np.testing.assert_allclose(grad, total, rtol=1e-5, atol=1e-8)


# --- the numpy engine --------------------------------------------------------------------------

def test_a_distillation_step_moves_the_weights_down_its_gradient():
    features, soft, labels = batch()
    model = build_model("numpy", SPEC, seed=1, options=TrainOptions(lr=0.01))
    start = model.get_weights()

    def loss_at(name, index):
        def loss(value):
            weights = {**start, name: start[name].astype(np.float64).copy()}
            weights[name][index] = value[0]
            probe = build_model("numpy", SPEC, seed=1)
            probe._weights = {key: np.asarray(array, np.float64) for key, array in weights.items()}  # unrounded
            return distillation_loss(probe._forward(features.astype(np.float64), False)[0], soft, 3.0, labels, 0.6)[0]
        return loss

    model.distill_step(features, soft, 3.0, labels=labels, alpha=0.6)
    assert model.step == 1
    for name, value in start.items():
        index = tuple(np.zeros(value.ndim, dtype=int))
        numeric = numeric_gradient(loss_at(name, index), np.array([float(value[index])]))[0]
        assert (start[name][index] - model.get_weights()[name][index]) / 0.01 == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_alpha_zero_with_labels_is_an_ordinary_training_step():
    features, soft, labels = batch()
    distilled, trained = (build_model("numpy", SPEC, seed=1, options=TrainOptions(optimizer="adam", lr=0.01)) for _ in range(2))
    for _ in range(3):
        assert distilled.distill_step(features, soft, 4.0, labels=labels, alpha=0.0) == pytest.approx(trained.train_step(features, labels))
    for name, value in trained.get_weights().items():
        np.testing.assert_allclose(distilled.get_weights()[name], value, rtol=1e-6, atol=1e-7)


def test_distillation_leaves_frozen_layers_alone():
    features, soft, labels = batch()
    model = build_model("numpy", SPEC, seed=1)
    model.freeze(["hidden"])
    before = model.get_weights()
    model.distill_step(features, soft, 2.0, labels=labels)
    after = model.get_weights()
    assert np.array_equal(before["hidden.weight"], after["hidden.weight"])
    assert not np.array_equal(before["logits.weight"], after["logits.weight"])


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_the_input_gradient_matches_finite_differences(temperature):
    features, _, labels = batch(rows=3)
    model = build_model("numpy", SPEC, seed=2)
    grad = model.input_gradient(features, labels, temperature=temperature)
    assert grad.shape == features.shape and grad.dtype == np.float32
    for row in range(3):
        def row_loss(x, row=row):
            logits = model._forward(x[None, :], False)[0]
            return cross_entropy_rows(logits, labels[row:row + 1], temperature)[0]
        np.testing.assert_allclose(grad[row], numeric_gradient(row_loss, features[row]), rtol=1e-3, atol=1e-6)


def test_the_input_gradient_changes_nothing_and_keeps_the_callers_shape():
    features, _, labels = batch(rows=4)
    model = build_model("numpy", ModelSpec.from_dict({"input_shape": [1, 2, 3], "layers": [
        {"type": "flatten"}, {"type": "dropout", "rate": 0.5}, {"type": "dense", "name": "logits", "units": 3}]}), seed=0)
    before = model.get_weights()
    first = model.input_gradient(features.reshape(4, 1, 2, 3), labels)
    assert first.shape == (4, 1, 2, 3)
    np.testing.assert_array_equal(first, model.input_gradient(features.reshape(4, 1, 2, 3), labels))  # no dropout
    assert model.step == 0 and all(np.array_equal(before[k], v) for k, v in model.get_weights().items())


@pytest.mark.parametrize("call, message", [
    (lambda m, x, s, y: m.distill_step(x, s[:, :2], 2.0), "soft targets have shape"),
    (lambda m, x, s, y: m.distill_step(x, s * 2, 2.0), "not a probability distribution"),
    (lambda m, x, s, y: m.distill_step(x, np.where(s > 0.5, -0.1, s), 2.0), "not a probability distribution"),
    (lambda m, x, s, y: m.distill_step(x, s, 0.0), "temperature must be a number > 0"),
    (lambda m, x, s, y: m.distill_step(x, s, 2.0, labels=y, alpha=1.5), "alpha must be in"),
    (lambda m, x, s, y: m.distill_step(x, s, 2.0, labels=y[:3]), "labels"),
    (lambda m, x, s, y: m.distill_step(x[:0], s[:0], 2.0), "no rows"),
    (lambda m, x, s, y: m.input_gradient(x, y + 3), "outside the model's classes"),
    (lambda m, x, s, y: m.input_gradient(x, y, temperature=-1), "temperature"),
    (lambda m, x, s, y: m.input_gradient(x[:, :4], y), "rows of shape"),
])
def test_bad_arguments_are_refused_and_change_nothing(call, message):
    features, soft, labels = batch()
    model = build_model("numpy", SPEC, seed=0)
    before = model.get_weights()
    with pytest.raises(DataError, match=message):
        call(model, features, soft, labels)
    assert model.step == 0 and all(np.array_equal(before[k], v) for k, v in model.get_weights().items())


# --- MXNet against numpy -----------------------------------------------------------------------

@pytest.fixture
def mxnet_engine():
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")


def test_mxnet_distils_as_numpy_does(mxnet_engine):
    features, soft, labels = batch()
    options = TrainOptions(optimizer="sgd", lr=0.05, momentum=0.9, clip_norm=0.5)
    mx_model, np_model = build_model("mxnet", SPEC, seed=4, options=options), build_model("numpy", SPEC, seed=4, options=options)
    for step in range(3):
        hard = labels if step != 1 else None
        assert mx_model.distill_step(features, soft, 3.0, hard, 0.5) == pytest.approx(np_model.distill_step(features, soft, 3.0, hard, 0.5), rel=1e-5)
    for name, value in np_model.get_weights().items():
        np.testing.assert_allclose(mx_model.get_weights()[name], value, rtol=1e-4, atol=1e-6)


def test_mxnet_input_gradients_are_numpys_and_change_nothing(mxnet_engine):
    features, soft, labels = batch()
    mx_model, np_model = build_model("mxnet", SPEC, seed=4), build_model("numpy", SPEC, seed=4)
    before = mx_model.get_weights()
    for temperature in (1.0, 5.0):
        np.testing.assert_allclose(mx_model.input_gradient(features, labels, temperature),
                                   np_model.input_gradient(features, labels, temperature), rtol=1e-4, atol=1e-7)
    assert mx_model.step == 0 and all(np.array_equal(before[k], v) for k, v in mx_model.get_weights().items())


def test_mxnet_distillation_keeps_frozen_layers_and_their_statistics(mxnet_engine):
    spec = ModelSpec.from_dict({"input_shape": [6], "layers": [
        {"type": "dense", "name": "hidden", "units": 5, "activation": "relu"}, {"type": "batchnorm", "name": "norm"},
        {"type": "dense", "name": "logits", "units": 3}]})
    features, soft, labels = batch()
    model = build_model("mxnet", spec, seed=0)
    model.freeze(["hidden", "norm"])
    before = model.get_weights()
    model.distill_step(features, soft, 2.0, labels)
    after = model.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before if not k.startswith("logits."))
    assert not np.array_equal(before["logits.weight"], after["logits.weight"])


def test_a_read_only_batch_as_decoded_messages_hold_it_is_handed_to_the_engines_writable():
    features, _, _ = batch()
    features.setflags(write=False)  # torch will not wrap a read-only array (a warning, an error under pytest)
    model = build_model("numpy", SPEC, seed=0)
    assert model.batch(features).flags.writeable and model.batch(features).flags.c_contiguous
    writable = np.ascontiguousarray(batch()[0])
    assert np.shares_memory(model.batch(writable), writable)  # no copy when none is needed
