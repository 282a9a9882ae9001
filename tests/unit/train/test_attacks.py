"""FGSM through the model contract's input gradient: the step, the clipping, the error table, and a
saturated softmax whose gradient vanishes at T = 1 (gradient masking) but not on logits / T."""

from __future__ import annotations

import numpy as np
import pytest

from h3spark.errors import DataError
from h3spark.train.engines.attacks import fgsm, robustness
from h3spark.train.engines.model import build_model
from h3spark.train.engines.spec import ModelSpec

LINEAR = ModelSpec.from_dict({"input_shape": [4], "init": {"kind": "normal", "std": 1.0}, "layers": [
    {"type": "dense", "name": "logits", "units": 3}]})


def data(rows: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.8, (rows, 4)).astype(np.float32), rng.integers(0, 3, rows)


def test_fgsm_moves_each_feature_by_epsilon_uphill_on_the_loss():
    model, (features, labels) = build_model("numpy", LINEAR, seed=0), data()
    moved = fgsm(model, features, labels, 0.05, bounds=None)
    np.testing.assert_allclose(np.abs(moved - features), 0.05, rtol=1e-5)
    before = [model.evaluate(features[i:i + 1], labels[i:i + 1])["loss"] for i in range(6)]
    after = [model.evaluate(moved[i:i + 1], labels[i:i + 1])["loss"] for i in range(6)]
    assert all(a > b for a, b in zip(after, before))
    np.testing.assert_array_equal(fgsm(model, features, labels, 0.0), features)


def test_fgsm_clips_to_the_features_range():
    model, (features, labels) = build_model("numpy", LINEAR, seed=0), data()
    moved = fgsm(model, features, labels, 0.5)
    assert moved.min() >= 0.0 and moved.max() <= 1.0 and np.any(moved == 0.0) | np.any(moved == 1.0)


def test_the_table_starts_with_the_clean_error_and_grows_with_epsilon():
    model, (features, labels) = build_model("numpy", LINEAR, seed=1), data(rows=200, seed=3)
    table = robustness(model, features, labels, [0.0, 0.1, 0.5])
    clean = float(np.mean(model.logits(features).argmax(axis=1) != labels))
    assert table["error"][0] == pytest.approx(clean)
    assert table["error"][0] <= table["error"][1] <= table["error"][2] and table["error"][2] > clean
    assert table["masked_rows"] == 0.0 and table["temperature"] == 1.0


def test_a_saturated_softmax_masks_the_gradient_at_t1_but_not_on_logits_over_t():
    model, (features, labels) = build_model("numpy", LINEAR, seed=2), data(rows=50)
    model.set_weights({name: value * 2000 for name, value in model.get_weights().items()})  # logit gaps of ~1000
    right = model.logits(features).argmax(axis=1)  # attack the rows it gets right: their softmax is exactly 1
    at_one = robustness(model, features, right, [0.0, 0.3], temperature=1.0)
    at_hundred = robustness(model, features, right, [0.0, 0.3], temperature=1000.0)
    assert at_one["masked_rows"] == 1.0 and at_one["error"] == [0.0, 0.0]
    assert at_hundred["masked_rows"] == 0.0 and at_hundred["error"][1] > 0.0


@pytest.mark.parametrize("epsilon", [-0.1, float("nan"), "0.1", True])
def test_a_bad_epsilon_is_refused(epsilon):
    model, (features, labels) = build_model("numpy", LINEAR, seed=0), data()
    with pytest.raises(DataError, match="epsilon must be a number >= 0"):
        fgsm(model, features, labels, epsilon)
    with pytest.raises(DataError, match="epsilon must be a number >= 0"):
        robustness(model, features, labels, [0.0, epsilon])
