"""Ready-made train functions for the ``experiment:`` YAML section, and saving trial models.

Each trainer reads the published dataset through the feeding :class:`DataIterator`: the
``train`` split (or ``all``), evaluated on ``validation`` or ``test`` when the dataset has
one, else on a seeded holdout. Trainers are plain classes, so Spark pickles them by reference.
"""

from __future__ import annotations

import os

import numpy as np

from h3spark.errors import ConfigError

_EVAL_SPLITS = ("validation", "test")


def train_and_eval_arrays(uri: str | None, holdout_fraction: float, seed: int):
    """(X_train, y_train, X_eval, y_eval) of the dataset at ``uri``."""
    from h3spark.storage import read_manifest
    from h3spark.train.engines.sklearn import holdout_split, load_split

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
    """A PyTorch MLP (``hidden``: a width or a list of widths) trained with Adam; params may set
    lr, epochs, batch_size and classes. Reads the dataset through DataIterator + TorchBatches.

    torch is needed where the trials run, not on the driver: set the Spark conf
    ``spark.pyspark.python`` to an interpreter that has it (e.g. ``.venv-torch/bin/python``).
    """

    _DEFAULTS = {"lr": 0.01, "epochs": 3, "batch_size": 64, "hidden": 128, "classes": 10}

    def __init__(self, model: str, fixed: dict | None = None, holdout_fraction: float = 0.25, seed: int = 0):
        if model != "mlp":
            raise ConfigError("experiment.model.name", [f"the torch engine trains 'mlp'. Got {model!r} instead."])
        self.model, self.fixed, self.holdout_fraction, self.seed = model, dict(fixed or {}), holdout_fraction, seed

    def __call__(self, params: dict, ctx) -> dict:
        from h3spark.tune import _torch

        torch = _torch.import_torch()
        options = {**self._DEFAULTS, **self.fixed, **params}
        if int(options["epochs"]) < 1:
            raise ConfigError("experiment.model.params", [f"epochs must be at least 1. Got {options['epochs']!r} instead."])
        torch.manual_seed(self.seed)
        train, evaluate = _torch.feeds(ctx.dataset_uri, options, self.holdout_fraction, self.seed)
        spec = {"features": int(np.prod(train.feature_shape)), "hidden": options["hidden"], "classes": int(options["classes"])}
        device = "cuda" if ctx.gpus and torch.cuda.is_available() else "cpu"
        net = _torch.build_mlp(**spec).to(device)
        metrics = _torch.fit_mlp(net, train, evaluate, options, device,
                                 on_epoch=lambda epoch, values: ctx.report(values, step=epoch))
        ctx.model_path = _torch.save_module(net, _model_dir(ctx), spec)
        return metrics


def _model_dir(ctx) -> str:
    directory = os.path.join(ctx.logdir, "model")
    os.makedirs(directory, exist_ok=True)
    return directory


TRAINERS = {"sklearn": SklearnTrainer, "mxnet": GluonTrainer, "torch": TorchTrainer}


def save_model(model, directory: str) -> str:
    """Save a scikit-learn estimator with joblib, a Gluon block with save_parameters, or a torch
    module's state_dict as safetensors.

    joblib files are pickles: load only those your own experiments wrote.
    """
    os.makedirs(directory, exist_ok=True)
    if hasattr(model, "state_dict") and hasattr(model, "named_parameters"):
        from h3spark.tune._torch import save_module

        return save_module(model, directory)
    if hasattr(model, "save_parameters"):
        path = os.path.join(directory, "model.params")
        model.save_parameters(path)
        return path
    if hasattr(model, "get_params") and hasattr(model, "fit"):
        import joblib

        path = os.path.join(directory, "model.joblib")
        joblib.dump(model, path)
        return path
    raise ConfigError("ctx.save_model", [f"save_model saves scikit-learn estimators, Gluon blocks and torch modules. Got {type(model).__name__} "
                                         "instead; save it yourself under ctx.logdir."])
