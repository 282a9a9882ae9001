"""Small models of every kind the serving side loads, made in a few milliseconds."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_spec():
    from h3spark.train.engines.spec import ModelSpec

    return ModelSpec.from_dict({"input_shape": [1, 8, 8], "layers": [
        {"type": "flatten"}, {"type": "dense", "name": "hidden", "units": 16, "activation": "relu"},
        {"type": "dense", "name": "logits", "units": 10}]})


@pytest.fixture(scope="session")
def numpy_model(digits_spec):
    from h3spark.train.engines.model import build_model

    model = build_model("numpy", digits_spec, seed=3)
    model.step = 42
    return model


@pytest.fixture(scope="session")
def model_path(numpy_model, tmp_path_factory) -> str:
    return numpy_model.save(str(tmp_path_factory.mktemp("model") / "model.safetensors"))


@pytest.fixture(scope="session")
def served(model_path):
    from h3spark.serve import find_model

    return find_model(model_path).load()


def fitted_estimator(rows: int = 60):
    """A logistic regression on 4 features and the labels 2, 5 and 7."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = np.repeat([2, 5, 7], rows // 3)
    X = rng.normal(size=(rows, 4)) + y[:, None]
    return LogisticRegression(max_iter=200).fit(X, y), X, y


@pytest.fixture
def experiment_dir(tmp_path):
    """An experiment folder as h3spark's experiments leave it: trials.jsonl and best_model/model.joblib."""
    import joblib

    folder = tmp_path / "experiments" / "demo"
    (folder / "best_model").mkdir(parents=True)
    (folder / "trials.jsonl").write_text("")
    joblib.dump(fitted_estimator()[0], folder / "best_model" / "model.joblib")
    return folder
