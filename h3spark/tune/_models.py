"""Ready-made train functions for the ``experiment:`` YAML section, and saving trial models.

These are the trial glue only: each trainer merges its options, asks the engines
(``h3spark.train.engines``: sklearn, mxnet_models, torch_models) to build, train, score and
save the model, and reports to the trial's context. The rows come from the engines' one split
rule (:mod:`h3spark.train.engines.splits`): the ``train`` split, scored on ``validation``, else
``test``, else a seeded holdout. Trainers are plain classes, so Spark pickles them by reference.
"""

from __future__ import annotations

import os

import numpy as np

from h3spark.errors import ConfigError


def _dataset_uri(ctx) -> str:
    if not ctx.dataset_uri:
        raise ConfigError("experiment.dataset", ["the built-in trainers need a dataset; set dataset.uri (or experiment.dataset)."])
    return ctx.dataset_uri


def _check_classes(uri: str, classes: int) -> None:
    """The labels of the splits a trial reads must fit the model's ``classes`` outputs (a DataError fails the trial)."""
    from h3spark.train import check_labels
    from h3spark.train.engines.splits import choose_splits, dataset_splits

    splits = [split for split in choose_splits(dataset_splits(uri)) if split] or [None]
    check_labels(uri, classes, "experiment.model.params.classes", splits)


class SklearnTrainer:
    """Fit a scikit-learn estimator from h3spark.train.engines.sklearn with the trial's params."""

    def __init__(self, model: str, fixed: dict | None = None, holdout_fraction: float = 0.25, seed: int = 0):
        self.model, self.fixed, self.holdout_fraction, self.seed = model, dict(fixed or {}), holdout_fraction, seed

    def __call__(self, params: dict, ctx) -> dict:
        from h3spark.train.engines import sklearn as engine
        from h3spark.train.engines.splits import train_and_eval_arrays

        data = train_and_eval_arrays(_dataset_uri(ctx), self.holdout_fraction, self.seed)
        estimator = engine.fit_estimator(self.model, {**self.fixed, **params}, data.X, data.y, self.seed)
        metrics = {"accuracy": engine.accuracy(estimator, data.X_eval, data.y_eval),
                   "train_accuracy": engine.accuracy(estimator, data.X, data.y)}
        ctx.report(metrics, step=0)
        ctx.save_model(estimator)
        return metrics


class GluonTrainer:
    """Train the MXNet Gluon MLP (``hidden``, ``dropout``) or CNN (``channels``); params may set lr,
    epochs, batch_size, optimizer, hidden / dropout / channels and classes. Reports loss and
    accuracy per epoch."""

    _DEFAULTS = {"lr": 0.01, "epochs": 3, "batch_size": 64, "optimizer": "adam", "classes": 10, "dropout": 0.0}

    def __init__(self, model: str, fixed: dict | None = None, holdout_fraction: float = 0.25, seed: int = 0):
        if model not in ("mlp", "cnn"):
            raise ConfigError("experiment.model.name", [f"the mxnet engine trains 'mlp' or 'cnn'. Got {model!r} instead."])
        self.model, self.fixed, self.holdout_fraction, self.seed = model, dict(fixed or {}), holdout_fraction, seed

    def __call__(self, params: dict, ctx) -> dict:
        from h3spark.train.engines import mxnet_models as models
        from h3spark.train.engines.splits import train_and_eval_arrays

        options = {**self._DEFAULTS, **self.fixed, **params}
        _check_classes(_dataset_uri(ctx), int(options["classes"]))
        X, y, X_eval, y_eval, _ = train_and_eval_arrays(_dataset_uri(ctx), self.holdout_fraction, self.seed)
        if self.model == "cnn":
            if options["dropout"]:
                raise ConfigError("experiment.model.params", [f"dropout applies to the mlp; the cnn has none. Got "
                                                              f"dropout={options['dropout']!r} instead."])
            side = models.image_side(int(np.prod(X.shape[1:])))
            X, X_eval = X.reshape(-1, 1, side, side), X_eval.reshape(-1, 1, side, side)
            net = models.build_cnn(int(options.get("channels", 16)), int(options["classes"]), side)
        else:
            net = models.build_mlp(options.get("hidden", 128), int(options["classes"]), dropout=options["dropout"])
        metrics = models.fit_gluon(net, X, y, X_eval, y_eval, epochs=int(options["epochs"]), lr=float(options["lr"]),
                                   batch_size=int(options["batch_size"]), optimizer=options["optimizer"], seed=self.seed,
                                   on_epoch=lambda epoch, values: ctx.report(values, step=epoch))
        ctx.save_model(net)
        return metrics


class TorchTrainer:
    """A PyTorch MLP (``hidden``: a width or a list of widths; ``dropout``) trained with Adam;
    params may set lr, epochs, batch_size, hidden, dropout and classes. Reads the dataset through
    DataIterator + TorchBatches.

    torch is needed where the trials run, not on the driver: set the Spark conf
    ``spark.pyspark.python`` to an interpreter that has it (e.g. ``.venv-torch/bin/python``).
    """

    _DEFAULTS = {"lr": 0.01, "epochs": 3, "batch_size": 64, "hidden": 128, "classes": 10, "dropout": 0.0}

    def __init__(self, model: str, fixed: dict | None = None, holdout_fraction: float = 0.25, seed: int = 0):
        if model != "mlp":
            raise ConfigError("experiment.model.name", [f"the torch engine trains 'mlp'. Got {model!r} instead."])
        self.model, self.fixed, self.holdout_fraction, self.seed = model, dict(fixed or {}), holdout_fraction, seed

    def __call__(self, params: dict, ctx) -> dict:
        from h3spark.train.engines import torch_models as models
        from h3spark.train.engines.splits import train_and_eval_sources

        torch = models.import_torch()
        options = {**self._DEFAULTS, **self.fixed, **params}
        epochs = int(options["epochs"])
        if epochs < 1:
            raise ConfigError("experiment.model.params", [f"epochs must be at least 1. Got {options['epochs']!r} instead."])
        _check_classes(_dataset_uri(ctx), int(options["classes"]))
        train, evaluate = train_and_eval_sources(_dataset_uri(ctx), batch_size=int(options["batch_size"]), epochs=epochs,
                                                 holdout_fraction=self.holdout_fraction, seed=self.seed)
        spec = {"features": int(np.prod(train.feature_shape)), "hidden": options["hidden"],
                "classes": int(options["classes"]), "dropout": options["dropout"]}
        device = "cuda" if ctx.gpus and torch.cuda.is_available() else "cpu"
        net = models.build_mlp(spec["features"], spec["hidden"], spec["classes"], seed=self.seed, dropout=spec["dropout"])
        metrics = models.fit_mlp(net.to(device), train, evaluate, lr=float(options["lr"]), epochs=epochs, device=device,
                                 on_epoch=lambda epoch, values: ctx.report(values, step=epoch))
        ctx.model_path = models.save_module(net, _model_dir(ctx), spec)
        return metrics


def _model_dir(ctx) -> str:
    directory = os.path.join(ctx.logdir, "model")
    os.makedirs(directory, exist_ok=True)
    return directory


TRAINERS = {"sklearn": SklearnTrainer, "mxnet": GluonTrainer, "torch": TorchTrainer}


def save_model(model, directory: str) -> str:
    """Save a scikit-learn estimator with joblib, a Gluon block with save_parameters, or a torch
    module's state_dict as safetensors, each by its engine.

    joblib files are pickles: load only those your own experiments wrote.
    """
    os.makedirs(directory, exist_ok=True)
    if hasattr(model, "state_dict") and hasattr(model, "named_parameters"):
        from h3spark.train.engines.torch_models import save_module

        return save_module(model, directory)
    if hasattr(model, "save_parameters"):
        from h3spark.train.engines.mxnet_models import save_block

        return save_block(model, directory)
    if hasattr(model, "get_params") and hasattr(model, "fit"):
        from h3spark.train.engines.sklearn import save_estimator

        return save_estimator(model, directory)
    raise ConfigError("ctx.save_model", [f"save_model saves scikit-learn estimators, Gluon blocks and torch modules. Got {type(model).__name__} "
                                         "instead; save it yourself under ctx.logdir."])
