"""The numpy engine, the in-memory twin of the model contract: exact gradients, learning, and
each training option's effect on the update it makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from h3spark.errors import ConfigError, DataError
from h3spark.train.engines.model import TrainOptions, learning_rate, load_model
from h3spark.train.engines.numpy_model import NumpyModel
from h3spark.train.engines.spec import ModelSpec, mlp_spec

SMALL = {"input_shape": [1, 2, 3], "layers": [
    {"type": "flatten"},
    {"type": "dense", "name": "a", "units": 5, "activation": "tanh"},
    {"type": "activation", "function": "sigmoid"},
    {"type": "dense", "name": "b", "units": 4, "activation": "softrelu"},
    {"type": "dense", "name": "c", "units": 4, "activation": "relu"},
    {"type": "dropout", "rate": 0.3},
    {"type": "dense", "name": "logits", "units": 3}]}


def batch(rows=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 6)).astype(np.float32), rng.integers(0, 3, rows)


def small_model(**options) -> NumpyModel:
    return NumpyModel(ModelSpec.from_dict(SMALL), seed=3, options=TrainOptions(**options))


def loss_with_mask(model, features, labels, weights) -> float:
    """The training loss at ``weights`` with the same dropout mask every time."""
    model.set_weights(weights)
    model._dropout_rng = np.random.default_rng(11)  # the mask the analytic gradient used
    return model.gradients(features, labels)[0]


def test_gradients_match_finite_differences():
    model, (features, labels) = small_model(), batch()
    start = model.get_weights()
    model._dropout_rng = np.random.default_rng(11)
    _, grads = model.gradients(features, labels)
    assert sorted(grads) == sorted(start)
    for name, value in start.items():
        for index in np.ndindex(value.shape):
            up, down = dict(start), dict(start)
            up[name], down[name] = value.copy(), value.copy()
            up[name][index] += np.float32(1e-3)
            down[name][index] -= np.float32(1e-3)
            step = float(up[name][index]) - float(down[name][index])  # the float32 step actually taken
            numeric = (loss_with_mask(model, features, labels, up) - loss_with_mask(model, features, labels, down)) / step
            assert numeric == pytest.approx(grads[name][index], rel=1e-3, abs=1e-6), (name, index)


def test_gradients_change_no_weight():
    model, (features, labels) = small_model(), batch()
    before = model.get_weights()
    model.gradients(features, labels)
    assert all(np.array_equal(before[name], value) for name, value in model.get_weights().items())
    assert model.step == 0


def digits():
    """scikit-learn's digits, read from the CSV it ships (importing scikit-learn takes seconds)."""
    folder = importlib.util.find_spec("sklearn").submodule_search_locations[0]  # finds the package, runs none of it
    data = np.loadtxt(Path(folder) / "datasets" / "data" / "digits.csv.gz", delimiter=",")
    features, labels = data[:, :-1], data[:, -1].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    return (features / 16.0).astype(np.float32)[order], labels[order]


def test_an_mlp_spec_learns_the_digits():
    features, labels = digits()
    spec = mlp_spec(64, [32], 10, dropout=0.1)
    model = NumpyModel(spec, seed=0, options=TrainOptions(optimizer="adam", lr=0.01))
    for _ in range(5):
        for start in range(0, 1400, 64):
            model.train_step(features[start:start + 64], labels[start:start + 64])
    result = model.evaluate(features[1400:], labels[1400:])
    assert result["accuracy"] >= 0.9 and model.step == 5 * 22
    assert model.predict(features[1400:1403]).shape == (3, 10)


def observed_step(model, features, labels) -> tuple[dict, dict]:
    """One train_step: (the gradient it used, computed just before; the change of each weight)."""
    _, grads = model.gradients(features, labels)
    before = model.get_weights()
    model.train_step(features, labels)
    after = model.get_weights()
    return grads, {name: after[name].astype(np.float64) - before[name] for name in before}


def plain_spec_model(**options) -> NumpyModel:
    """No dropout: the gradient before a step is the one the step uses."""
    return NumpyModel(mlp_spec(6, [5], 3), seed=1, options=TrainOptions(**options))


def rate_of(grads, delta) -> float:
    return -sum(float(np.sum(grads[n] * delta[n])) for n in grads) / sum(float(np.sum(g * g)) for g in grads.values())


@pytest.mark.parametrize("options, rates", [
    ({"lr": 0.1, "warmup_steps": 4}, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1]),
    ({"lr": 0.1, "schedule": "step", "step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
    ({"lr": 0.1, "warmup_steps": 2, "schedule": "cosine", "total_steps": 2, "min_lr": 0.02},
     [0.05, 0.1, 0.1, 0.06, 0.02, 0.02]),
])
def test_each_step_uses_the_rate_of_warmup_and_schedule(options, rates):
    model, (features, labels) = plain_spec_model(**options), batch()
    observed = [rate_of(*observed_step(model, features, labels)) for _ in rates]
    assert observed == pytest.approx(rates, rel=1e-4)
    assert observed == pytest.approx([learning_rate(model.options, step) for step in range(len(rates))], rel=1e-4)


def global_norm(arrays) -> float:
    return float(np.sqrt(sum(float(np.sum(a * a)) for a in arrays.values())))


def test_clipping_bounds_the_update_norm():
    features, labels = batch()
    unclipped = plain_spec_model(lr=1.0)
    grads, delta = observed_step(unclipped, features, labels)
    assert global_norm(delta) == pytest.approx(global_norm(grads), rel=1e-5) and global_norm(grads) > 0.05
    clipped = plain_spec_model(lr=1.0, clip_norm=0.05)
    grads, delta = observed_step(clipped, features, labels)
    assert global_norm(delta) == pytest.approx(0.05, rel=1e-4)  # lr * clip_norm: the direction kept, the norm bounded
    assert rate_of(grads, delta) == pytest.approx(0.05 / global_norm(grads), rel=1e-4)


def test_weight_decay_adds_l2_to_the_gradient():
    model, (features, labels) = plain_spec_model(lr=0.1, weight_decay=0.5), batch()
    weights = model.get_weights()
    grads, delta = observed_step(model, features, labels)
    for name in grads:
        np.testing.assert_allclose(delta[name], -0.1 * (grads[name] + 0.5 * weights[name]), atol=1e-6)


def test_sgd_momentum_keeps_the_gradients_in_its_buffer():
    model, (features, labels) = plain_spec_model(lr=0.1, momentum=0.9), batch()
    first, _ = observed_step(model, features, labels)
    second, delta = observed_step(model, features, labels)
    for name in first:
        np.testing.assert_allclose(delta[name], -0.1 * (0.9 * first[name] + second[name]), atol=1e-6)


def test_adam_first_step_moves_each_weight_by_the_rate():
    model, (features, labels) = plain_spec_model(optimizer="adam", lr=0.01), batch()
    grads, delta = observed_step(model, features, labels)
    for name in grads:
        big = np.abs(grads[name]) > 1e-4  # where eps does not matter: |update| = lr, against the gradient
        np.testing.assert_allclose(delta[name][big], -0.01 * np.sign(grads[name][big]), rtol=1e-3)


def test_dcasgd_compensates_with_the_weights_last_change():
    model, (features, labels) = plain_spec_model(optimizer="dcasgd", lr=0.1, dcasgd_lambda=2.0), batch()
    first, delta1 = observed_step(model, features, labels)
    for name in first:
        np.testing.assert_allclose(delta1[name], -0.1 * first[name], atol=1e-6)  # backup = w at the first step
    second, delta2 = observed_step(model, features, labels)
    for name in second:
        expected = -0.1 * (second[name] + 2.0 * second[name] ** 2 * delta1[name])
        np.testing.assert_allclose(delta2[name], expected, atol=1e-6)


def test_dcasgd_with_momentum_keeps_its_steps_in_a_buffer():
    model, (features, labels) = plain_spec_model(optimizer="dcasgd", lr=0.1, momentum=0.5, dcasgd_lambda=2.0), batch()
    _, delta1 = observed_step(model, features, labels)
    second, delta2 = observed_step(model, features, labels)
    for name in second:
        expected = 0.5 * delta1[name] - 0.1 * (second[name] + 2.0 * second[name] ** 2 * delta1[name])
        np.testing.assert_allclose(delta2[name], expected, atol=1e-6)


def test_frozen_layers_get_no_update():
    model, (features, labels) = plain_spec_model(optimizer="adam", lr=0.1), batch()
    model.freeze(["hidden0"])
    _, delta = observed_step(model, features, labels)
    assert not np.any(delta["hidden0.weight"]) and not np.any(delta["hidden0.bias"])
    assert np.any(delta["logits.weight"])
    assert sorted(model.gradients(features, labels)[1]) == ["logits.bias", "logits.weight"]


def test_save_and_load_keep_weights_step_and_predictions(tmp_path):
    model, (features, labels) = small_model(optimizer="sgd", lr=0.1), batch()
    model.train_step(features, labels)
    path = model.save(str(tmp_path / "model.safetensors"))
    loaded = load_model(path)
    assert isinstance(loaded, NumpyModel) and loaded.step == 1 and loaded.spec == model.spec
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    other = small_model()
    other.load(path)
    np.testing.assert_array_equal(other.get_weights()["b.weight"], model.get_weights()["b.weight"])


def test_inference_has_no_dropout_and_the_same_seed_gives_the_same_model():
    features, _ = batch()
    one, two = small_model(), small_model()
    np.testing.assert_array_equal(one.logits(features), one.logits(features))
    np.testing.assert_array_equal(one.logits(features), two.logits(features))
    assert one.get_weights()["a.weight"].dtype == np.float32


@pytest.mark.parametrize("layer", [{"type": "conv2d", "name": "conv1", "filters": 2, "kernel": 3, "padding": 1},
                                   {"type": "maxpool", "size": 2}, {"type": "batchnorm"}])
def test_image_layers_are_refused_with_the_engines_that_run_them(layer):
    spec = ModelSpec.from_dict({"input_shape": [1, 4, 4], "layers": [layer, {"type": "flatten"},
                                                                   {"type": "dense", "units": 2}]})
    with pytest.raises(ConfigError) as caught:
        NumpyModel(spec)
    name = layer.get("name") or f"{layer['type']}0"
    assert caught.value.problems == [f"layer {name!r} is a {layer['type']} layer; the numpy engine runs dense, flatten, "
                                     "dropout and activation layers. Use engine mxnet or torch for this spec."]


@pytest.mark.parametrize("labels, message", [([0, 1, 3], "label 3 is outside the model's classes 0..2"),
                                             ([0, 1], "the batch has 3 rows of features but 2 labels"),
                                             ([0.5, 1, 2], "labels must be class indices (ints)")])
def test_bad_labels_are_data_errors(labels, message):
    with pytest.raises(DataError, match=message.replace("(", "\\(").replace(")", "\\)")):
        plain_spec_model().train_step(np.zeros((3, 6), np.float32), np.asarray(labels))
