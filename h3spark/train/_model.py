"""The model a training run trains, whatever the engine: its spec, read from the worker settings,
checked against the dataset, and its file in a checkpoint (what ``Model.save`` writes).

    >>> spec = training_spec(settings, data.feature_shape)   # training.model: a spec, or mlp + params
    >>> model = build_model("mxnet", spec, seed=settings["seed"], options=train_options(settings))
    >>> files = {MODEL_FILE: model_file(model)}              # model.safetensors: load_model reads it
    >>> model.set_weights(read_model_file(files[MODEL_FILE], where=uri))

``training.model: mlp`` is the spec :func:`~h3spark.train.engines.spec.mlp_spec` makes of
``params.hidden`` and ``params.classes`` over the dataset's flattened rows; a spec given layer
by layer must take rows of the dataset's size.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from h3spark.errors import DataError
from h3spark.train.engines.model import Model, load_weights
from h3spark.train.engines.spec import ModelSpec, mlp_spec

MODEL_FILE = "model.safetensors"  # in every checkpoint: the model as Model.save writes it
DEFAULT_HIDDEN = [256]
DEFAULT_CLASSES = 10


def model_spec_of(settings: dict) -> ModelSpec | None:
    """The spec ``training.model`` gives layer by layer; None for the ``mlp`` shorthand."""
    model = settings.get("model")
    return ModelSpec.from_dict(model, where="training.model") if isinstance(model, dict) else None


def model_classes(settings: dict) -> int:
    """The number of outputs of the run's classifier: the spec's last layer, else ``params.classes`` (10)."""
    spec = model_spec_of(settings)
    return spec.classes if spec is not None else int((settings.get("params") or {}).get("classes", DEFAULT_CLASSES))


def classes_setting(settings: dict) -> str:
    """Where the number of classes is set, for messages."""
    spec = model_spec_of(settings)
    return "training.params.classes" if spec is None else f"training.model's last layer ({spec.layers[-1].name!r}: units)"


def training_spec(settings: dict, feature_shape) -> ModelSpec:
    """The run's spec for a dataset whose rows have ``feature_shape``; a spec whose input is not
    the size of a row is a DataError naming both shapes."""
    features = int(np.prod(feature_shape))
    spec = model_spec_of(settings)
    if spec is None:
        params = settings.get("params") or {}
        return mlp_spec([features], list(params.get("hidden", DEFAULT_HIDDEN)), model_classes(settings))
    if spec.features != features:
        raise DataError(f"training.model takes rows of shape {list(spec.input_shape)} ({spec.features} values), but the "
                        f"dataset {settings.get('dataset_uri')} has rows of shape {list(feature_shape)} ({features} values). "
                        "Set training.model.input_shape to the dataset's shape.")
    return spec


def check_training_model(settings: dict) -> None:
    """What the driver checks before any worker starts: the training options fit the model
    contract (sgd, adam, dcasgd; a ConfigError otherwise) and the spec takes the dataset's rows."""
    from h3spark.feed import DataIterator
    from h3spark.train._options import train_options

    train_options(settings)
    feature_shape = DataIterator(settings["dataset_uri"], settings.get("train_split"), batch_size=1, prefetch=0,
                                 read_threads=1).feature_shape
    training_spec(settings, feature_shape)


def model_file(model: Model) -> bytes:
    """The bytes of ``model.save`` (safetensors: weights by LAYER.PARAM, the spec and engine in the metadata)."""
    with tempfile.TemporaryDirectory(prefix="h3spark-model-") as folder:
        path = model.save(os.path.join(folder, MODEL_FILE))
        with open(path, "rb") as handle:
            return handle.read()


def read_model_file(data: bytes, where: str) -> dict[str, np.ndarray]:
    """The weights of a :func:`model_file` (``where``: the checkpoint, for messages)."""
    with tempfile.TemporaryDirectory(prefix="h3spark-model-") as folder:
        path = os.path.join(folder, MODEL_FILE)
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            weights, _ = load_weights(path)
        except DataError as error:
            raise DataError(f"{where}: {error}") from None
    return weights


def accuracy(model: Model, batches, where: str) -> float:
    """The fraction of rows of ``batches`` ((features, labels) numpy minibatches) whose highest
    logit is the label, in inference mode. Empty data is a DataError naming ``where``."""
    correct = total = 0
    for features, labels in batches:
        correct += int((model.logits(features).argmax(axis=1) == np.asarray(labels).reshape(-1)).sum())
        total += len(labels)
    if total == 0:
        raise DataError(f"{where} is empty; there is nothing to score the model on.")
    return correct / total
