"""The scikit-learn engine: fit an estimator on the driver (or in a trial) from numpy arrays."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pyarrow as pa

from h3spark.errors import ConfigError
from h3spark.train.engines.splits import holdout_split, load_split, train_and_eval_arrays

__all__ = ["ESTIMATORS", "build_estimator", "fit_estimator", "accuracy", "save_estimator", "fit_and_score",
           "train_on_dataset", "table_to_arrays", "holdout_split", "load_split"]

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


def fit_and_score(model: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, holdout_fraction: float, seed: int):
    """Fit on a seeded holdout split; return (estimator, metrics)."""
    train, test = holdout_split(len(y), holdout_fraction, seed)
    return _fit_and_measure(model, params, X[train], y[train], X[test], y[test], seed)


def fit_estimator(model: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, seed: int):
    """Build ``model`` with ``params`` and fit it; ``random_state`` defaults to ``seed``."""
    estimator = build_estimator(model, params)
    if "random_state" in estimator.get_params() and "random_state" not in params:
        estimator.set_params(random_state=seed)
    return estimator.fit(_flat(X), y)


def accuracy(estimator, X: np.ndarray, y: np.ndarray) -> float:
    """The fraction of rows whose predicted class is the label."""
    return float((estimator.predict(_flat(X)) == y).mean())


def save_estimator(estimator, directory: str) -> str:
    """``model.joblib`` in ``directory``. joblib files are pickles: load only those you wrote."""
    import os

    import joblib

    path = os.path.join(directory, "model.joblib")
    joblib.dump(estimator, path)
    return path


def _fit_and_measure(model: str, params: dict[str, Any], X_train, y_train, X_test, y_test, seed: int):
    estimator = fit_estimator(model, params, X_train, y_train, seed)
    metrics = {"accuracy": accuracy(estimator, X_test, y_test), "train_rows": int(len(y_train)), "test_rows": int(len(y_test))}
    return estimator, metrics


def _flat(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1).astype(np.float32, copy=False)


def train_on_dataset(uri: str, splits: dict, model: str, params: dict[str, Any], holdout_fraction: float, seed: int):
    """Fit and score by the one split rule (:mod:`h3spark.train.engines.splits`): train on the
    train split, score on validation (else test); a dataset without them gets a seeded holdout.
    Returns (estimator, metrics); ``metrics["evaluated_on"]`` names the scoring split."""
    data = train_and_eval_arrays(uri, holdout_fraction, seed, splits)
    estimator, metrics = _fit_and_measure(model, params, data.X, data.y, data.X_eval, data.y_eval, seed)
    return estimator, metrics if data.evaluated_on is None else {**metrics, "evaluated_on": data.evaluated_on}
