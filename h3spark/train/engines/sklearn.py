"""The scikit-learn engine: fit an estimator on the driver (or in a trial) from numpy arrays."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pyarrow as pa

from h3spark.errors import ConfigError, DataError

# name -> (module, class); params from the config are passed to the constructor.
ESTIMATORS = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression"),
    "sgd": ("sklearn.linear_model", "SGDClassifier"),
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier"),
    "gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier"),
    "mlp": ("sklearn.neural_network", "MLPClassifier"),
    "knn": ("sklearn.neighbors", "KNeighborsClassifier"),
    "ridge": ("sklearn.linear_model", "RidgeClassifier"),
}


def build_estimator(model: str, params: dict[str, Any]):
    """Instantiate a known estimator; unknown names or parameters are config errors."""
    if model not in ESTIMATORS:
        raise ConfigError("training.model", [f"unknown sklearn model {model!r}. Choose one of: {', '.join(sorted(ESTIMATORS))}."])
    module, name = ESTIMATORS[model]
    cls = getattr(importlib.import_module(module), name)
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError("training.params", [f"{key}: not a parameter of {name}." for key in unknown])
    return cls(**params)


def table_to_arrays(table: pa.Table, features: str = "features", label: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """Turn a table with a list<float> features column into (X, y) numpy arrays (h3spark.feed's converter)."""
    from h3spark.feed import table_to_arrays as feed_table_to_arrays

    X, y = feed_table_to_arrays(table, features, label)
    return X.reshape(len(X), -1).astype(np.float32, copy=False), y


def holdout_split(rows: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, test) row indices."""
    order = np.random.default_rng(seed).permutation(rows)
    test_rows = max(1, int(round(rows * fraction)))
    return np.sort(order[test_rows:]), np.sort(order[:test_rows])


def fit_and_score(model: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, holdout_fraction: float, seed: int):
    """Fit on a seeded holdout split; return (estimator, metrics)."""
    train, test = holdout_split(len(y), holdout_fraction, seed)
    return _fit_and_measure(model, params, X[train], y[train], X[test], y[test], seed)


def _fit_and_measure(model: str, params: dict[str, Any], X_train, y_train, X_test, y_test, seed: int):
    estimator = build_estimator(model, params)
    if "random_state" in estimator.get_params() and "random_state" not in params:
        estimator.set_params(random_state=seed)
    estimator.fit(_flat(X_train), y_train)
    accuracy = float((estimator.predict(_flat(X_test)) == y_test).mean())
    return estimator, {"accuracy": accuracy, "train_rows": int(len(y_train)), "test_rows": int(len(y_test))}


def _flat(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1).astype(np.float32, copy=False)


def load_split(uri: str, split: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Every row of one split of a published dataset as (features, labels), read through the
    feeder; features keep their shape (images stay images)."""
    from h3spark.feed import DataIterator

    batches = list(DataIterator(uri, split, batch_size=8192))
    if not batches:
        raise DataError(f"split {split!r} of {uri} has no rows; there is nothing to train on.")
    return np.concatenate([batch.features for batch in batches]), np.concatenate([batch.labels for batch in batches])


def train_on_dataset(uri: str, splits: dict, model: str, params: dict[str, Any], holdout_fraction: float, seed: int):
    """Fit on the dataset's train split and score on its test (or validation) split; a
    dataset without splits gets a seeded holdout. Returns (estimator, metrics)."""
    evaluation = next((name for name in ("test", "validation") if name in splits), None)
    if "train" not in splits or evaluation is None:
        X, y = load_split(uri, "all" if "all" in splits else next(iter(splits)))
        return fit_and_score(model, params, X, y, holdout_fraction, seed)
    estimator, metrics = _fit_and_measure(model, params, *load_split(uri, "train"), *load_split(uri, evaluation), seed)
    return estimator, {**metrics, "evaluated_on": evaluation}
