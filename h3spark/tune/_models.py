"""Ready-made train functions for the ``experiment:`` YAML section, and saving trial models.

Each trainer reads the published dataset through the feeding :class:`DataIterator`: the
``train`` split (or ``all``), evaluated on ``validation`` or ``test`` when the dataset has
one, else on a seeded holdout. Trainers are plain classes, so Spark pickles them by reference.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from h3spark.errors import ConfigError, DataError, missing_dependency

_EVAL_SPLITS = ("validation", "test")


def load_split(uri: str, split: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Every row of one split as (features, labels), read through the DataIterator."""
    from h3spark.feed import DataIterator

    batches = list(DataIterator(uri, split, batch_size=4096))
    if not batches:
        raise DataError(f"split {split!r} of {uri} has no rows; there is nothing to train on.")
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def train_and_eval_arrays(uri: str | None, holdout_fraction: float, seed: int):
    """(X_train, y_train, X_eval, y_eval) of the dataset at ``uri``."""
    from h3spark.storage import read_manifest
    from h3spark.train.engines.sklearn import holdout_split

    if not uri:
        raise ConfigError("experiment.dataset", ["the built-in trainers need a dataset; set dataset.uri (or experiment.dataset)."])
    splits = read_manifest(uri).get("splits", {})
    train_split = "train" if "train" in splits else None
    X, y = load_split(uri, train_split)
    eval_split = next((name for name in _EVAL_SPLITS if name in splits), None)
    if eval_split:
        return (X, y, *load_split(uri, eval_split))
    train, test = holdout_split(len(y), holdout_fraction, seed)
    return X[train], y[train], X[test], y[test]


class SklearnTrainer:
    """Fit a scikit-learn estimator from h3spark.train.engines.sklearn with the trial's params."""

    def __init__(self, model: str, fixed: dict | None = None, holdout_fraction: float = 0.25, seed: int = 0):
        self.model, self.fixed, self.holdout_fraction, self.seed = model, dict(fixed or {}), holdout_fraction, seed

    def __call__(self, params: dict, ctx) -> dict:
        from h3spark.train.engines.sklearn import build_estimator

        X, y, X_eval, y_eval = train_and_eval_arrays(ctx.dataset_uri, self.holdout_fraction, self.seed)
        estimator = build_estimator(self.model, {**self.fixed, **params})
        if "random_state" in estimator.get_params() and "random_state" not in {**self.fixed, **params}:
            estimator.set_params(random_state=self.seed)
        estimator.fit(X, y)
        metrics = {"accuracy": float((estimator.predict(X_eval) == y_eval).mean()),
                   "train_accuracy": float((estimator.predict(X) == y).mean())}
        ctx.report(metrics, step=0)
        ctx.save_model(estimator)
        return metrics


class GluonTrainer:
    """Train the MXNet Gluon MLP (``hidden``) or CNN (``channels``); params may set lr, epochs,
    batch_size, optimizer, hidden / channels and classes. Reports loss and accuracy per epoch."""

    _DEFAULTS = {"lr": 0.01, "epochs": 3, "batch_size": 64, "optimizer": "adam", "classes": 10}

    def __init__(self, model: str, fixed: dict | None = None, holdout_fraction: float = 0.25, seed: int = 0):
        if model not in ("mlp", "cnn"):
            raise ConfigError("experiment.model.name", [f"the mxnet engine trains 'mlp' or 'cnn'. Got {model!r} instead."])
        self.model, self.fixed, self.holdout_fraction, self.seed = model, dict(fixed or {}), holdout_fraction, seed

    def __call__(self, params: dict, ctx) -> dict:
        from h3spark.train.engines import mxnet_models as models

        options = {**self._DEFAULTS, **self.fixed, **params}
        X, y, X_eval, y_eval = train_and_eval_arrays(ctx.dataset_uri, self.holdout_fraction, self.seed)
        if self.model == "cnn":
            side = models.image_side(X.shape[1])
            X, X_eval = X.reshape(-1, 1, side, side), X_eval.reshape(-1, 1, side, side)
            net = models.build_cnn(int(options.get("channels", 16)), int(options["classes"]), side)
        else:
            net = models.build_mlp(options.get("hidden", 128), int(options["classes"]))
        metrics = models.fit_gluon(net, X, y, X_eval, y_eval, epochs=int(options["epochs"]), lr=float(options["lr"]),
                                   batch_size=int(options["batch_size"]), optimizer=options["optimizer"], seed=self.seed,
                                   on_epoch=lambda epoch, values: ctx.report(values, step=epoch))
        ctx.save_model(net)
        return metrics


class TorchTrainer:
    """A PyTorch MLP (``hidden``) trained with Adam; params may set lr, epochs, batch_size, classes.
    Needs torch, which the pinned environment lacks: building it then says how to install it."""

    _DEFAULTS = {"lr": 0.01, "epochs": 3, "batch_size": 64, "hidden": 128, "classes": 10}

    def __init__(self, model: str, fixed: dict | None = None, holdout_fraction: float = 0.25, seed: int = 0):
        if importlib.util.find_spec("torch") is None:
            raise missing_dependency("torch", "The torch experiment engine", extra="torch")
        if model != "mlp":
            raise ConfigError("experiment.model.name", [f"the torch engine trains 'mlp'. Got {model!r} instead."])
        self.model, self.fixed, self.holdout_fraction, self.seed = model, dict(fixed or {}), holdout_fraction, seed

    def __call__(self, params: dict, ctx) -> dict:
        import torch

        options = {**self._DEFAULTS, **self.fixed, **params}
        X, y, X_eval, y_eval = train_and_eval_arrays(ctx.dataset_uri, self.holdout_fraction, self.seed)
        torch.manual_seed(self.seed)
        device = "cuda" if ctx.gpus and torch.cuda.is_available() else "cpu"
        net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], int(options["hidden"])), torch.nn.ReLU(),
                                  torch.nn.Linear(int(options["hidden"]), int(options["classes"]))).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=float(options["lr"]))
        data, labels = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device).long()
        held, held_labels = torch.as_tensor(X_eval, device=device), torch.as_tensor(y_eval, device=device).long()
        metrics = {}
        for epoch in range(int(options["epochs"])):
            total = 0.0
            for rows in torch.randperm(len(labels), device=device).split(int(options["batch_size"])):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(data[rows]), labels[rows], reduction="sum")
                loss.backward()
                optimizer.step()
                total += float(loss)
            with torch.no_grad():
                correct = float((net(held).argmax(dim=1) == held_labels).float().mean())
            metrics = {"loss": total / len(labels), "accuracy": correct}
            ctx.report(metrics, step=epoch)
        return metrics


TRAINERS = {"sklearn": SklearnTrainer, "mxnet": GluonTrainer, "torch": TorchTrainer}


def save_model(model, directory: str) -> str:
    """Save a scikit-learn estimator with joblib, or a Gluon block with save_parameters.

    joblib files are pickles: load only those your own experiments wrote.
    """
    os.makedirs(directory, exist_ok=True)
    if hasattr(model, "save_parameters"):
        path = os.path.join(directory, "model.params")
        model.save_parameters(path)
        return path
    if hasattr(model, "get_params") and hasattr(model, "fit"):
        import joblib

        path = os.path.join(directory, "model.joblib")
        joblib.dump(model, path)
        return path
    raise ConfigError("ctx.save_model", [f"save_model saves scikit-learn estimators and Gluon blocks. Got {type(model).__name__} "
                                         "instead; save it yourself under ctx.logdir."])
