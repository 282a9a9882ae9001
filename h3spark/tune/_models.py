"""Ready-made train functions for the ``experiment:`` YAML section, and saving trial models.

These are the trial glue only: each trainer merges its options, asks the engines
(``h3spark.train.engines``: sklearn, and the model contract's MXNet and torch models) to build,
train, score and save the model, and reports to the trial's context. The rows come from the engines' one split
rule (:mod:`h3spark.train.engines.splits`): the ``train`` split, scored on ``validation``, else
``test``, else a seeded holdout. Trainers are plain classes, so Spark pickles them by reference.
"""

from __future__ import annotations

import math
import os

import numpy as np

from h3spark.errors import ConfigError


def _dataset_uri(ctx) -> str:
    if not ctx.dataset_uri:
        raise ConfigError("experiment.dataset", ["the built-in trainers need a dataset; set dataset.uri (or experiment.dataset)."])
    return ctx.dataset_uri


def _check_classes(uri: str, classes: int, setting: str = "experiment.model.params.classes") -> None:
    """The labels of the splits a trial reads must fit the model's ``classes`` outputs (a DataError
    fails the trial); ``setting`` says where the number of classes is set."""
    from h3spark.train import check_labels
    from h3spark.train.engines.splits import choose_splits, dataset_splits

    splits = [split for split in choose_splits(dataset_splits(uri)) if split] or [None]
    check_labels(uri, classes, setting, splits)


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


class _ContractTrainer:
    """A neural trial through the model contract (:mod:`h3spark.train.engines.model`): the model is
    built from a spec (``experiment.model.spec`` with the trial's ``layers.NAME.OPTION`` params
    applied, or the ``mlp``/``cnn`` shorthand), trained with the trial's training options (lr,
    optimizer, momentum, weight_decay, clip_norm, warmup_steps, schedule, ...; see
    ``h3spark.train.train_options``) for ``epochs`` of ``batch_size`` rows, scored after each
    epoch (``loss``: the epoch's mean training loss; ``accuracy``: on the scoring rows) and saved
    with ``Model.save`` (``model.safetensors``, which ``load_model`` reads in any engine).

    Shorthands: ``mlp`` (params hidden, dropout, classes) and ``cnn`` (channels, classes: two 3x3
    convolutions with pooling, as ``conv1``, ``conv2``, then ``logits``) on square images.
    """

    engine = ""
    models = ("mlp", "cnn")
    _DEFAULTS = {"lr": 0.01, "epochs": 3, "batch_size": 64, "optimizer": "adam"}
    _SHORTHAND = {"mlp": {"hidden": 128, "classes": 10, "dropout": 0.0}, "cnn": {"channels": 16, "classes": 10}}

    def __init__(self, model: str, fixed: dict | None = None, holdout_fraction: float = 0.25, seed: int = 0,
                 spec: dict | None = None):
        if spec is None and model not in self.models:
            raise ConfigError("experiment.model.name", [f"the {self.engine} engine trains {' or '.join(map(repr, self.models))}, "
                                                        f"or a model spec (experiment.model.spec). Got {model!r} instead."])
        self.model, self.fixed, self.holdout_fraction, self.seed = model, dict(fixed or {}), holdout_fraction, seed
        self.spec = spec

    def __call__(self, params: dict, ctx) -> dict:
        from h3spark.train import train_options
        from h3spark.train.engines.splits import train_and_eval_arrays

        device = self._device(ctx)  # first: where the engine is missing, say so before anything else
        values = {**self._DEFAULTS, **({} if self.spec else self._SHORTHAND[self.model]), **self.fixed, **params}
        spec, rest = self._split(values)
        uri = _dataset_uri(ctx)
        _check_classes(uri, spec.classes if spec else int(values["classes"]), self._classes_setting(spec))
        data = train_and_eval_arrays(uri, self.holdout_fraction, self.seed)
        spec = spec or _shorthand_spec(self.model, values, int(np.prod(data.X.shape[1:])))
        model = self._build(spec, train_options(rest, engine=self.engine), device)
        metrics = _fit(model, data, _positive(rest, "epochs"), _positive(rest, "batch_size"), self.seed, ctx)
        ctx.save_model(model)
        return metrics

    def _device(self, ctx) -> str | None:
        return None

    def _build(self, spec, options, device):
        from h3spark.train.engines.model import build_model

        return build_model(self.engine, spec, seed=self.seed, options=options)

    def _split(self, values: dict):
        """``(the given spec with the layer params applied, or None for a shorthand; the params
        left for training)``."""
        from h3spark.train.engines.spec import ModelSpec
        from h3spark.train.engines.spec_params import apply_overrides

        if self.spec is not None:
            merged, rest = apply_overrides(self.spec, values)
            return ModelSpec.from_dict(merged, "experiment.model.spec"), rest
        if self.model == "cnn" and values.get("dropout"):
            raise ConfigError("experiment.model.params", [f"dropout applies to the mlp; the cnn has none. Got "
                                                          f"dropout={values['dropout']!r} instead."])
        return None, {key: value for key, value in values.items() if key not in self._SHORTHAND[self.model]}

    @staticmethod
    def _classes_setting(spec) -> str:
        if spec is None:
            return "experiment.model.params.classes"
        return f"experiment.model.spec's last layer ({spec.layers[-1].name!r}: units)"


def _shorthand_spec(model: str, values: dict, features: int):
    from h3spark.train.engines.spec import ModelSpec, mlp_spec

    if model == "mlp":
        return mlp_spec([features], values["hidden"], int(values["classes"]), dropout=values["dropout"])
    side, channels = _image_side(features), values["channels"]
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigError("experiment.model.params", [f"The 'channels' parameter of the cnn must be an int >= 1. "
                                                      f"Got {channels!r} instead."])
    return ModelSpec.from_dict({"input_shape": [1, side, side], "layers": [
        {"type": "conv2d", "name": "conv1", "filters": channels, "kernel": 3, "padding": 1, "activation": "relu"},
        {"type": "maxpool", "name": "pool1", "size": 2},
        {"type": "conv2d", "name": "conv2", "filters": 2 * channels, "kernel": 3, "padding": 1, "activation": "relu"},
        {"type": "avgpool", "name": "pool2", "size": side // 2},  # global: one value per channel
        {"type": "flatten"},
        {"type": "dense", "name": "logits", "units": int(values["classes"])}]}, where="model (cnn)")


def _image_side(features: int) -> int:
    side = int(round(math.sqrt(features)))
    if side * side != features or side < 2:
        raise ConfigError("experiment.model.name", [f"the cnn needs square images, but rows have {features} features "
                                                    "(not a square number). Use the mlp, or a model spec."])
    return side


def _positive(values: dict, key: str) -> int:
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1 or int(value) != value:
        raise ConfigError("experiment.model.params", [f"{key} must be an int of at least 1. Got {value!r} instead."])
    return int(value)


def _fit(model, data, epochs: int, batch_size: int, seed: int, ctx) -> dict:
    """Train ``epochs`` of shuffled minibatches; report ``{"loss", "accuracy"}`` after each epoch."""
    rng, metrics = np.random.default_rng(seed), {}
    for epoch in range(epochs):
        order, total = rng.permutation(len(data.y)), 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            total += model.train_step(data.X[rows], data.y[rows]) * len(rows)
        metrics = {"loss": total / len(order), "accuracy": model.evaluate(data.X_eval, data.y_eval)["accuracy"]}
        ctx.report(metrics, step=epoch)
    return metrics


class GluonTrainer(_ContractTrainer):
    """Trials of the MXNet engine (``MXNetModel``): a spec, the ``mlp`` or the ``cnn``."""

    engine = "mxnet"


class TorchTrainer(_ContractTrainer):
    """Trials of the torch engine (``TorchModel``, on the trial's GPU when it has one): a spec,
    the ``mlp`` or the ``cnn``.

    torch is needed where the trials run, not on the driver: set the Spark conf
    ``spark.pyspark.python`` to an interpreter that has it (e.g. ``.venv-torch/bin/python``).
    """

    engine = "torch"

    def _device(self, ctx) -> str:
        from h3spark.train.engines.torch_model import import_torch

        torch = import_torch()
        return "cuda" if getattr(ctx, "gpus", None) and torch.cuda.is_available() else "cpu"

    def _build(self, spec, options, device):
        from h3spark.train.engines.torch_model import TorchModel

        return TorchModel(spec, seed=self.seed, options=options, device=device)


TRAINERS = {"sklearn": SklearnTrainer, "mxnet": GluonTrainer, "torch": TorchTrainer}


def save_model(model, directory: str) -> str:
    """Save a model of the contract with ``Model.save`` (``model.safetensors``), a scikit-learn
    estimator with joblib, a Gluon block with save_parameters, or a torch module's state_dict as
    safetensors, each by its engine.

    joblib files are pickles: load only those your own experiments wrote.
    """
    from h3spark.train.engines.model import Model

    os.makedirs(directory, exist_ok=True)
    if isinstance(model, Model):
        return model.save(os.path.join(directory, "model.safetensors"))
    if hasattr(model, "state_dict") and hasattr(model, "named_parameters"):
        from h3spark.train.engines.torch_models import save_module

        return save_module(model, directory)
    if hasattr(model, "save_parameters"):
        from h3spark.train.engines.mxnet_models import save_block

        return save_block(model, directory)
    if hasattr(model, "get_params") and hasattr(model, "fit"):
        from h3spark.train.engines.sklearn import save_estimator

        return save_estimator(model, directory)
    raise ConfigError("ctx.save_model", [f"save_model saves h3spark models, scikit-learn estimators, Gluon blocks and torch modules. Got {type(model).__name__} "
                                         "instead; save it yourself under ctx.logdir."])
