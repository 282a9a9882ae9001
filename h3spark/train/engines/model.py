"""The model contract: what every engine's model does, whoever uses it (training, experiments,
actors, gates, serving, browser workers).

    >>> model = build_model("torch", spec, seed=0, options=TrainOptions(optimizer="adam", lr=0.01))
    >>> loss = model.train_step(features, labels)        # one optimizer step on one minibatch
    >>> model.predict(features)                           # class probabilities, numpy (N, classes)
    >>> model.evaluate(features, labels)                  # {"loss": ..., "accuracy": ...}
    >>> model.distill_step(features, teacher_probs, 4.0, labels)  # a step on Hinton et al.'s loss at T=4
    >>> model.input_gradient(features, labels)            # d loss / d input, for FGSM
    >>> model.get_weights(["conv1"])                      # {"conv1.weight": ndarray, "conv1.bias": ...}
    >>> other.set_weights(model.get_weights(["conv1"]))   # transfer by layer name, any engine
    >>> model.save("model.safetensors"); same = load_model("model.safetensors")

A model is built from a :class:`~h3spark.train.engines.spec.ModelSpec` and a seed: the spec
draws every weight once with numpy and the engine loads them, so the same spec and seed give
the same start in every engine. Features arrive as numpy arrays of shape (N, *input_shape) or
(N, prod(input_shape)); labels as ints. Saved files are safetensors (weights by layer name,
the spec and the engine in the metadata): no pickle.

:class:`TrainOptions` holds the training options both neural engines read from the config
(optimizer, lr, warm-up, schedule, weight decay, clipping); :func:`learning_rate` is the one
home of the schedule, so both engines use the same rate at every step.
"""

from __future__ import annotations

import importlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from h3spark.errors import ConfigError, DataError, missing_dependency
from h3spark.train.engines.losses import check_distillation, cross_entropy_rows, distillation_loss, log_softmax
from h3spark.train.engines.spec import ModelSpec

#: A loss as a function of the logits: ``objective(logits) -> (loss, d loss / d logits)``.
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]

OPTIMIZERS = ("sgd", "adam", "dcasgd")
SCHEDULES = ("constant", "step", "cosine")
FORMAT_KEY = "h3spark"  # the safetensors metadata entry: {"engine", "spec"} as JSON


@dataclass(frozen=True)
class TrainOptions:
    """How a model trains. ``schedule``: constant; step (times ``gamma`` every ``step_size``
    steps); cosine (down to ``min_lr`` at ``total_steps``). ``warmup_steps`` ramps the rate
    linearly from lr/warmup_steps up to lr first. ``weight_decay`` is L2 on the weights,
    ``clip_norm`` bounds the global norm of each step's gradient (0: off). ``dcasgd_lambda``
    is DC-ASGD's variance control (Zheng et al. 2017)."""

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    clip_norm: float = 0.0
    warmup_steps: int = 0
    schedule: str = "constant"
    step_size: int = 1000
    gamma: float = 0.1
    total_steps: int = 0
    min_lr: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    dcasgd_lambda: float = 0.04

    def __post_init__(self):
        problems = _option_problems(self)
        if problems:
            raise ConfigError("training", problems)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _option_problems(options: TrainOptions) -> list[str]:
    problems = []
    if options.optimizer not in OPTIMIZERS:
        problems.append(f"'optimizer' must be one of {list(OPTIMIZERS)}. Got {options.optimizer!r} instead.")
    if options.schedule not in SCHEDULES:
        problems.append(f"'schedule' must be one of {list(SCHEDULES)}. Got {options.schedule!r} instead.")
    if options.schedule == "cosine" and options.total_steps < 1:
        problems.append("the cosine schedule needs 'total_steps' >= 1 (the step where it reaches min_lr).")
    for key in ("lr", "gamma", "epsilon"):
        if not getattr(options, key) > 0:
            problems.append(f"'{key}' must be > 0. Got {getattr(options, key)!r} instead.")
    for key in ("weight_decay", "clip_norm", "min_lr", "dcasgd_lambda", "warmup_steps"):
        if getattr(options, key) < 0:
            problems.append(f"'{key}' must be >= 0. Got {getattr(options, key)!r} instead.")
    for key in ("momentum", "beta1", "beta2"):
        if not 0 <= getattr(options, key) < 1:
            problems.append(f"'{key}' must be in [0, 1). Got {getattr(options, key)!r} instead.")
    if options.step_size < 1:
        problems.append(f"'step_size' must be >= 1. Got {options.step_size!r} instead.")
    return problems


def learning_rate(options: TrainOptions, step: int) -> float:
    """The rate of update number ``step`` (0-based): warm-up first, then the schedule.

    >>> learning_rate(TrainOptions(lr=0.1, warmup_steps=4), 0), learning_rate(TrainOptions(lr=0.1, warmup_steps=4), 3)
    (0.025, 0.1)
    """
    if step < options.warmup_steps:
        return options.lr * (step + 1) / options.warmup_steps
    after = step - options.warmup_steps
    if options.schedule == "step":
        return options.lr * options.gamma ** (after // options.step_size)
    if options.schedule == "cosine":
        progress = min(after / options.total_steps, 1.0)
        return options.min_lr + (options.lr - options.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    return options.lr


class Model(ABC):
    """One engine's model built from a spec. Subclasses implement the abstract methods; the
    rest (weights by layer, save and load, evaluation) is shared."""

    engine: str = ""

    def __init__(self, spec: ModelSpec, seed: int = 0, options: TrainOptions | None = None):
        self.spec, self.seed, self.options = spec, seed, options or TrainOptions()
        self.step = 0  # optimizer steps taken: the model's version
        self._frozen: frozenset[str] = frozenset()

    # --- what each engine implements -----------------------------------------------------

    @abstractmethod
    def train_step(self, features: np.ndarray, labels: np.ndarray) -> float:
        """One optimizer step on a minibatch; returns its mean loss and increments ``step``."""

    @abstractmethod
    def gradients(self, features: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """The mean loss and its gradient for every trainable weight, without updating anything."""

    @abstractmethod
    def logits(self, features: np.ndarray) -> np.ndarray:
        """The raw outputs (N, classes) in inference mode (no dropout, batchnorm's running stats)."""

    @abstractmethod
    def _train_on_logits(self, features: np.ndarray, objective: Objective) -> float:
        """One optimizer step (as :meth:`train_step`'s: training mode, the rate, clipping, frozen
        layers, ``step`` incremented) on the loss ``objective(logits)`` returns with its gradient
        with respect to the logits (numpy, float64); returns that loss. ``features`` is batched."""

    @abstractmethod
    def _input_backward(self, features: np.ndarray, objective: Objective) -> np.ndarray:
        """In inference mode, ``objective``'s logits-gradient carried back to the input: an
        array shaped like ``features`` (batched); no weight and no statistic changes."""

    @abstractmethod
    def _get(self) -> dict[str, np.ndarray]:
        """Every weight (trainable and running statistics) as numpy, by ``LAYER.PARAM``."""

    @abstractmethod
    def _set(self, weights: dict[str, np.ndarray]) -> None:
        """Copy ``weights`` (already checked: known names, right shapes, float32) into the model."""

    # --- shared --------------------------------------------------------------------------

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes): the softmax of :meth:`logits`."""
        return softmax(self.logits(features))

    def evaluate(self, features: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Mean cross-entropy and accuracy on a batch, in inference mode."""
        logits = self.logits(features).astype(np.float64)
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if len(labels) == 0:
            raise DataError("there are no rows to evaluate the model on.")
        log_probs = log_softmax(logits)
        loss = float(-log_probs[np.arange(len(labels)), labels].mean())
        return {"loss": loss, "accuracy": float((logits.argmax(axis=1) == labels).mean())}

    def distill_step(self, features: np.ndarray, soft_targets: np.ndarray, temperature: float,
                     labels: np.ndarray | None = None, alpha: float = 0.9) -> float:
        """One optimizer step on Hinton et al.'s distillation loss (:mod:`.losses`): the teacher's
        ``soft_targets`` = softmax(teacher_logits / ``temperature``), and with ``labels`` a share
        ``1 - alpha`` of plain cross-entropy. Returns the mean loss and increments ``step``.

            >>> student.distill_step(x, softmax(teacher.logits(x), 4.0), 4.0, labels=y, alpha=0.9)
        """
        batch = self._rows(features, "distil the model on")
        soft = check_distillation(soft_targets, len(batch), self.spec.classes, temperature, alpha)
        hard = None if labels is None else self.labels(labels, len(batch))
        return self._train_on_logits(batch, lambda logits: distillation_loss(logits, soft, temperature, hard, alpha))

    def input_gradient(self, features: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """d loss / d input in inference mode, shaped like ``features``: row i is the gradient of
        row i's own cross-entropy on softmax(logits / ``temperature``) (what FGSM takes the sign of).

            >>> adversarial = x + epsilon * np.sign(model.input_gradient(x, y))
        """
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise DataError(f"the temperature of input_gradient must be a number > 0. Got {temperature!r} instead.")
        batch = self._rows(features, "take the input gradient of")
        targets = self.labels(labels, len(batch))
        grad = self._input_backward(batch, lambda logits: cross_entropy_rows(logits, targets, temperature))
        return np.asarray(grad, dtype=np.float32).reshape(np.shape(features))

    def _rows(self, features: np.ndarray, doing: str) -> np.ndarray:
        batch = self.batch(features)
        if len(batch) == 0:
            raise DataError(f"there are no rows to {doing}; pass a batch of at least one row.")
        return batch

    def get_weights(self, layers: list[str] | None = None) -> dict[str, np.ndarray]:
        """The weights of ``layers`` (all when None) as float32 numpy arrays by ``LAYER.PARAM``."""
        weights = self._get()
        wanted = None if layers is None else {self.spec.layer(name).name for name in layers}
        return {name: value for name, value in weights.items() if wanted is None or self.spec.layer_of(name) in wanted}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load some or all weights by name (transfer learning loads a subset). Unknown names and
        wrong shapes are a DataError naming the weight and both shapes."""
        expected = self.spec.param_shapes()
        checked = {}
        for name, value in weights.items():
            if name not in expected:
                raise DataError(f"weight {name!r} is not in this model; its weights are {sorted(expected)}.")
            array = np.asarray(value, dtype=np.float32)
            if tuple(array.shape) != expected[name]:
                raise DataError(f"weight {name!r} has shape {tuple(array.shape)}, but the model's is {expected[name]}.")
            checked[name] = np.ascontiguousarray(array)
        self._set(checked)

    def frozen(self) -> frozenset[str]:
        """Layers whose weights training leaves alone (see :meth:`freeze`)."""
        return self._frozen

    def freeze(self, layers: list[str], frozen: bool = True) -> None:
        """Stop (or restart) training the named layers, e.g. after loading them from another model."""
        names = {self.spec.layer(name).name for name in layers}
        self._frozen = self._frozen | names if frozen else self._frozen - names

    def save(self, path: str) -> str:
        """Write every weight to ``path`` as safetensors, the spec and engine in its metadata."""
        save_weights(path, self.get_weights(), {"engine": self.engine, "spec": self.spec.to_dict(), "step": self.step})
        return path

    def load(self, path: str) -> None:
        """Load the weights another model (any engine) saved; the spec must have the same weights."""
        weights, _ = load_weights(path)
        self.set_weights(weights)

    def batch(self, features: np.ndarray) -> np.ndarray:
        """``features`` as float32 (N, *input_shape), contiguous and writable (torch will not wrap a read-only
        array, and decoded messages are read-only views); a row of the wrong size is a DataError."""
        array = np.asarray(features, dtype=np.float32)
        if array.ndim == 0 or int(np.prod(array.shape[1:])) != self.spec.features:
            raise DataError(f"the model takes rows of shape {self.spec.input_shape} ({self.spec.features} values); "
                            f"got a batch of shape {array.shape}.")
        return np.require(array.reshape((array.shape[0], *self.spec.input_shape)), requirements=["C", "W"])

    def labels(self, labels: np.ndarray, rows: int) -> np.ndarray:
        """``labels`` as int64 class indices, one per row of a batch of ``rows``; a count that
        differs, a fraction or a label outside the model's classes is a DataError."""
        array = np.asarray(labels).reshape(-1)
        if len(array) != rows:
            raise DataError(f"the batch has {rows} rows of features but {len(array)} labels; give one label per row.")
        if not np.issubdtype(array.dtype, np.integer) and not np.array_equal(array, np.round(array)):
            raise DataError(f"labels must be class indices (ints); got values like {array[:3].tolist()}.")
        array = array.astype(np.int64)
        if rows and (array.min() < 0 or array.max() >= self.spec.classes):
            bad = array[(array < 0) | (array >= self.spec.classes)][0]
            raise DataError(f"label {bad} is outside the model's classes 0..{self.spec.classes - 1}; "
                            f"the last layer has {self.spec.classes} units.")
        return array


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


# --- files -------------------------------------------------------------------------------------

def save_weights(path: str, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """``weights`` to a safetensors file with ``meta`` (JSON) under the metadata key ``h3spark``."""
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise missing_dependency("safetensors", "Saving a model") from None
    save_file({name: np.ascontiguousarray(value) for name, value in weights.items()}, path,
              metadata={FORMAT_KEY: json.dumps(meta)})


def load_weights(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The weights and the metadata :func:`save_weights` wrote; an unreadable file is a DataError."""
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise missing_dependency("safetensors", "Loading a model") from None
    try:
        with safe_open(path, "np") as handle:
            meta = json.loads((handle.metadata() or {}).get(FORMAT_KEY) or "{}")
            weights = {name: handle.get_tensor(name) for name in handle.keys()}
    except (OSError, ValueError, SafetensorError) as error:  # SafetensorError: a bad header (0.8: no ValueError)
        raise DataError(f"{path} is not a model h3spark saved (a safetensors file): {error}") from None
    return weights, meta


def build_model(engine: str, spec: ModelSpec, seed: int = 0, options: TrainOptions | None = None) -> Model:
    """The ``engine`` ("mxnet", "torch" or "numpy") model of ``spec``, with weights drawn from ``seed``."""
    return _engine_class(engine)(spec, seed=seed, options=options)


def load_model(path: str, engine: str | None = None, options: TrainOptions | None = None) -> Model:
    """A model saved by :meth:`Model.save`, in ``engine`` (default: the one that saved it)."""
    weights, meta = load_weights(path)
    if "spec" not in meta:
        raise DataError(f"{path} holds no model spec in its metadata; it was not written by Model.save.")
    spec = ModelSpec.from_dict(meta["spec"], where=path)
    model = build_model(engine or meta.get("engine", "numpy"), spec, options=options)
    model.set_weights(weights)
    model.step = int(meta.get("step", 0))
    return model


#: Each engine's Model class, as "module:Class": imported only when that engine is asked for, so
#: building a numpy model never imports MXNet or torch (and the engines can import this module).
ENGINES = {"mxnet": "h3spark.train.engines.mxnet_models:MXNetModel",
           "torch": "h3spark.train.engines.torch_models:TorchModel",
           "numpy": "h3spark.train.engines.numpy_model:NumpyModel"}


def _engine_class(engine: str) -> type[Model]:
    if engine not in ENGINES:
        raise ConfigError("training.engine", [f"no neural engine {engine!r}; use one of {sorted(ENGINES)}."])
    module, name = ENGINES[engine].split(":")
    return getattr(importlib.import_module(module), name)
