"""Bundled datasets and the scikit-learn engine (no JVM)."""

import numpy as np
import pyarrow as pa
import pytest

from h3spark.errors import ConfigError, DataError
from h3spark.ingest import bundled_names, load_bundled
from h3spark.train.engines.sklearn import build_estimator, fit_and_score, holdout_split, table_to_arrays


def test_digits_has_the_expected_shape_and_metadata():
    table = load_bundled("digits")
    X, y = table_to_arrays(table)
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert set(np.unique(y)) == set(range(10))
    assert table.schema.metadata[b"h3spark.feature_shape"] == b"64"


def test_unknown_bundled_dataset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown bundled dataset 'mnist'") as caught:
        load_bundled("mnist")
    assert all(name in str(caught.value) for name in bundled_names())


def test_holdout_split_is_deterministic_and_disjoint():
    train, test = holdout_split(100, 0.2, seed=5)
    again_train, again_test = holdout_split(100, 0.2, seed=5)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert len(test) == 20 and not set(train) & set(test) and len(set(train) | set(test)) == 100
    assert not np.array_equal(holdout_split(100, 0.2, seed=6)[1], test)


def test_fit_and_score_learns_iris():
    X, y = table_to_arrays(load_bundled("iris"))
    _, metrics = fit_and_score("logistic_regression", {"max_iter": 500}, X, y, 0.3, seed=1)
    assert metrics["accuracy"] > 0.85 and metrics["test_rows"] == 45


def test_unknown_model_and_parameter_are_config_errors():
    with pytest.raises(ConfigError, match="unknown sklearn model 'svm'"):
        build_estimator("svm", {})
    with pytest.raises(ConfigError, match="max_iters: not a parameter of LogisticRegression"):
        build_estimator("logistic_regression", {"max_iters": 5})


def test_ragged_or_missing_columns_are_data_errors():
    ragged = pa.table({"features": pa.array([[1.0, 2.0], [3.0]]), "label": [0, 1]})
    with pytest.raises(DataError, match="different lengths"):
        table_to_arrays(ragged)
    with pytest.raises(DataError, match="no column 'label'"):
        table_to_arrays(pa.table({"features": pa.array([[1.0]])}))
