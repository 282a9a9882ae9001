"""Finding and loading a model to serve: contract files of any engine, estimators from experiments only."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from h3spark.errors import DataError
from h3spark.serve import ContractModel, EstimatorModel, find_model
from tests.unit.serve.conftest import fitted_estimator


def test_a_contract_file_loads_with_its_shape_classes_and_version(served, numpy_model):
    assert isinstance(served, ContractModel) and served.engine == "numpy"
    assert served.input_shape == (1, 8, 8) and served.features == 64 and served.version == 42
    assert served.classes.tolist() == list(range(10))
    x = np.random.default_rng(1).random((5, 64), dtype=np.float32)
    assert np.allclose(served.predict(x), numpy_model.predict(x.reshape(5, 1, 8, 8)))
    assert served.shapes() == "[-1, 1, 8, 8] or [-1, 64]"


def test_a_folder_holding_the_file_or_a_training_runs_checkpoints_find_it(model_path, tmp_path):
    from h3spark.storage import publishing

    (tmp_path / "saved").mkdir()
    shutil.copy(model_path, tmp_path / "saved" / "model.safetensors")
    assert find_model(str(tmp_path / "saved")).uri.endswith("saved/model.safetensors")
    root = tmp_path / "checkpoints" / "digits"
    for step in (10, 20):  # checkpoints as h3spark train publishes them: run-R/step-N/_versions/V/
        with publishing(f"file://{root}/run-0001/step-{step:08d}") as folder:
            Path(folder[len("file://"):]).mkdir()
            shutil.copy(model_path, folder[len("file://"):] + "/model.safetensors")
    newest = find_model("checkpoints/digits", workdir=str(tmp_path))
    assert newest.kind == "contract" and "/run-0001/step-00000020/_versions/" in newest.uri
    assert "/step-00000010/" in find_model(str(root / "run-0001" / "step-00000010")).uri
    assert newest.load().version == 42


def test_nothing_there_or_no_model_is_a_data_error_naming_the_place(tmp_path):
    with pytest.raises(DataError, match="no model at .*missing: nothing is there"):
        find_model(str(tmp_path / "missing"))
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(DataError, match="model.safetensors is not a model h3spark saved"):
        find_model(str(bad)).load()


def test_an_estimator_of_an_experiment_loads_and_predicts_its_own_labels(experiment_dir):
    model = find_model(str(experiment_dir)).load()
    assert isinstance(model, EstimatorModel) and model.engine == "sklearn"
    assert model.input_shape == (4,) and model.classes.tolist() == [2, 5, 7]
    estimator, X, y = fitted_estimator()
    probabilities = model.predict(X)
    assert np.allclose(probabilities, estimator.predict_proba(X), atol=1e-6)
    assert (model.labels(probabilities) == estimator.predict(X)).all()


def test_a_pickle_outside_an_experiment_is_refused_unread(tmp_path):
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(fitted_estimator()[0], path)
    with pytest.raises(DataError, match="is a pickle .*unpickling runs code.*trials.jsonl"):
        find_model(str(path))


def test_an_estimator_without_probabilities_gives_one_to_its_prediction():
    from sklearn.linear_model import RidgeClassifier

    _, X, y = fitted_estimator()
    ridge = RidgeClassifier().fit(X, y)
    model = EstimatorModel(ridge, "ridge")
    probabilities = model.predict(X)
    assert set(np.unique(probabilities)) == {0.0, 1.0} and (probabilities.sum(axis=1) == 1).all()
    assert (model.labels(probabilities) == ridge.predict(X)).all()


def test_something_that_is_no_classifier_is_refused():
    with pytest.raises(DataError, match="holds a dict, not a fitted scikit-learn classifier"):
        EstimatorModel({}, "x.joblib")
