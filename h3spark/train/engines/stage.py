"""A stage: consecutive layers of a model spec that train on their own, with their own optimizer,
while other stages hold the layers before and after (the gates of a pipeline, h3spark.gates).

    >>> first = build_stage("torch", spec, ["conv1", "pool1"], seed=0, options=TrainOptions(lr=0.05))
    >>> last = build_stage("torch", spec, ["flatten0", "logits"], seed=0, options=TrainOptions(lr=0.05))
    >>> hidden = first.forward(("train-1", 0), x, train=True)      # kept until its backward
    >>> logits = last.forward(("train-1", 0), hidden, train=True)
    >>> loss, grad = mean_cross_entropy(logits, y)
    >>> first.backward(("train-1", 0), last.backward(("train-1", 0), grad))   # None: the first stage

Batches are in flight at once: a stage runs the forward pass of the next batch before the
backward pass of the one before came back, and keeps what each in-flight batch's backward needs
(keyed by the caller's batch key). So a gradient arrives after ``delay`` updates of the stage since
its forward pass (its *delay*, recorded in :attr:`Stage.delays`). ``compensation`` says what the
backward pass does about it:

- ``none``: the backward pass runs with the stage's current weights on the activations its
  forward pass kept (PipeDream without weight stashing: the gradient mixes two versions);
- ``stash``: weight stashing (PipeDream, Narayanan et al. 2019): the backward pass uses the weights
  its forward pass used (a copy per weight version, kept while a batch of that version is in
  flight), so the gradient is the true gradient of the weights the batch saw;
- ``dcasgd``: the stashed gradient ``g``, compensated for the delay as DC-ASGD (Zheng et al. 2017,
  arXiv 1609.08326): ``g + lambda * g * g * (w_now - w_forward)``, where ``w_forward`` is the stash
  of the batch's own forward version: the true delay, where MXNet's DCASGD keeps the previous
  weight only (a one-step delay).

The update is then the training options' optimizer (sgd with momentum, or adam; the rate of
update number ``version``; clipping by this stage's global norm; L2 weight decay). A stage starts
from the spec's ``initial_weights(seed)`` restricted to its layers, so the stages of a spec start
as the whole model of the same seed does.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections import Counter
from typing import Hashable, Sequence

import numpy as np

from h3spark.errors import ConfigError, DataError
from h3spark.train.engines.losses import cross_entropy_rows
from h3spark.train.engines.model import TrainOptions
from h3spark.train.engines.spec import ModelSpec

COMPENSATIONS = ("none", "stash", "dcasgd")

#: Each engine's Stage class, imported on demand (as model.ENGINES), so numpy users import no framework.
STAGE_ENGINES = {"torch": "h3spark.train.engines.torch_stage:TorchStage",
                 "mxnet": "h3spark.train.engines.mxnet_stage:MXNetStage"}


def stage_spec(spec: ModelSpec, layers: Sequence[str]) -> ModelSpec:
    """The spec of ``layers`` (consecutive layers of ``spec``, in order) with the input shape of the
    first: not checked for a flat output, since a stage may end inside the network."""
    names = [layer.name for layer in spec.layers]
    if not layers:
        raise ConfigError("gates", ["a stage needs at least one layer."])
    for name in layers:
        spec.layer(name)  # a ConfigError naming the spec's layers when unknown
    start = names.index(layers[0])
    if names[start:start + len(layers)] != list(layers):
        raise ConfigError("gates", [f"a stage's layers must be consecutive layers of the spec, in order; "
                                    f"{list(layers)} are not (the spec's layers are {names})."])
    rows = spec.shapes()
    return ModelSpec(rows[start][1], tuple(spec.layers[start:start + len(layers)]), spec.init)


def mean_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean cross-entropy of a batch and its gradient with respect to the logits (float32),
    what a pipeline's sentinel sends back to the last stage. Logits that are not finite (a diverged
    model) give a loss that is not finite, without numpy's warnings: the caller says what happened."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        loss, grad = cross_entropy_rows(logits, np.asarray(labels, dtype=np.int64).reshape(-1))
    return loss, (grad / max(len(logits), 1)).astype(np.float32)


def percentile(counts: dict[int, int], q: float) -> float | None:
    """The ``q``-th percentile (0..100, nearest rank) of values given as {value: count}; None when empty."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank, seen = max(1, int(np.ceil(q / 100.0 * total))), 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return float(value)
    return float(max(counts))


class Stage(ABC):
    """One engine's stage of a spec (see the module's docstring). ``first``: the stage that takes the
    data, whose backward pass returns no input gradient."""

    engine = ""

    def __init__(self, spec: ModelSpec, layers: Sequence[str], seed: int = 0, options: TrainOptions | None = None,
                 compensation: str = "stash", first: bool | None = None):
        if compensation not in COMPENSATIONS:
            raise ConfigError("gates.compensation", [f"must be one of {list(COMPENSATIONS)}. Got {compensation!r} instead."])
        self.options = options or TrainOptions()
        if self.options.optimizer == "dcasgd":
            raise ConfigError("training.optimizer", ["a stage compensates delays itself: set compensation: dcasgd "
                                                     "(the true delay) with optimizer sgd or adam, not optimizer dcasgd "
                                                     "(MXNet's one-step delay)."])
        self.spec, self.layers, self.seed = spec, tuple(layers), seed
        self.sub_spec = stage_spec(spec, self.layers)
        self.first = self.layers[0] == spec.layers[0].name if first is None else first
        self.compensation = compensation
        self.version = 0  # updates applied: the stage's weight version
        self.delays: Counter[int] = Counter()  # delay (updates) -> how many gradients arrived that late
        self._pending: dict[Hashable, tuple] = {}  # key -> (forward version, what the backward needs, output shape)
        self._stash: dict[int, dict[str, object]] = {}  # version -> the engine's copies of the weights then
        self._stash_users: dict[int, int] = {}  # version -> batches in flight that use its copies

    def initial_weights(self) -> dict[str, np.ndarray]:
        """This stage's share of ``spec.initial_weights(seed)``."""
        wanted = set(self.layers)
        return {name: value for name, value in self.spec.initial_weights(self.seed).items()
                if self.spec.layer_of(name) in wanted}

    @property
    def in_flight(self) -> int:
        """Batches whose forward pass ran and whose backward pass has not come."""
        return len(self._pending)

    def forward(self, key: Hashable, inputs: np.ndarray, train: bool = True) -> np.ndarray:
        """The stage's output for a batch. In training (``train``) the stage keeps what the batch's
        backward needs under ``key``; otherwise it runs in inference mode and keeps nothing."""
        batch = np.asarray(inputs, dtype=np.float32)
        if batch.ndim < 1 or int(np.prod(batch.shape[1:])) != int(np.prod(self.sub_spec.input_shape)):
            raise DataError(f"stage {self.layers[0]}..{self.layers[-1]} takes rows of shape {self.sub_spec.input_shape}; "
                            f"got a batch of shape {batch.shape}.")
        batch = batch.reshape((batch.shape[0], *self.sub_spec.input_shape))
        if not train:
            return self._infer(batch)
        if key in self._pending:
            raise DataError(f"batch {key!r} is already in flight in stage {self.layers[0]}..{self.layers[-1]}; "
                            "give every batch its own key.")
        output, kept = self._forward(batch)
        self._pending[key] = (self.version, kept, output.shape)
        return output

    def backward(self, key: Hashable, grad_output: np.ndarray) -> np.ndarray | None:
        """Apply the batch's gradient (d loss / d output), one update; the gradient with respect to
        the stage's input, or None for the first stage. The delay is recorded."""
        if key not in self._pending:
            raise DataError(f"batch {key!r} has no forward pass in flight in stage {self.layers[0]}..{self.layers[-1]} "
                            "(never sent, already applied, or forgotten).")
        grad = np.asarray(grad_output, dtype=np.float32)
        if grad.shape != self._pending[key][2]:
            raise DataError(f"the gradient for batch {key!r} in stage {self.layers[0]}..{self.layers[-1]} has shape "
                            f"{grad.shape}; the stage's output had {self._pending[key][2]}.")
        version, kept, _ = self._pending.pop(key)
        delay = self.version - version
        grad_input = self._backward(kept, grad, version, delay)
        self.version += 1
        self.delays[delay] += 1
        return grad_input

    def pending_keys(self) -> list[Hashable]:
        """The keys of the batches in flight."""
        return list(self._pending)

    def forget(self, key: Hashable) -> bool:
        """Drop an in-flight batch that will never come back (its sender left); whether it was there."""
        entry = self._pending.pop(key, None)
        if entry is not None:
            self._release(entry[0])
        return entry is not None

    # --- what each engine implements -------------------------------------------------------

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """The output in inference mode (no dropout, running statistics), as float32 numpy."""

    @abstractmethod
    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, object]:
        """The output in training mode, and what the backward pass needs (graph, stash reference)."""

    @abstractmethod
    def _backward(self, kept: object, grad_output: np.ndarray, version: int, delay: int) -> np.ndarray | None:
        """Backpropagate, compensate as configured, update once; the input gradient (None when first)."""

    @abstractmethod
    def _copy_weights(self) -> dict[str, object]:
        """Copies of the trainable weights as they are now (the engine's arrays), for the stash."""

    # --- the stash (stash and dcasgd) ----------------------------------------------------------

    def _hold_stash(self) -> dict[str, object]:
        """The copies of this version's weights (taken now if this is its first batch), held once more."""
        if self.version not in self._stash:
            self._stash[self.version] = self._copy_weights()
        self._stash_users[self.version] = self._stash_users.get(self.version, 0) + 1
        return self._stash[self.version]

    def _release(self, version: int) -> None:
        """A batch of forward ``version`` is done with its stash (applied or forgotten)."""
        if version in self._stash_users:
            self._stash_users[version] -= 1
            if self._stash_users[version] == 0:
                del self._stash_users[version], self._stash[version]

    @property
    def stashed_versions(self) -> int:
        """Weight versions held in the stash now (at most one per batch in flight)."""
        return len(self._stash)

    @abstractmethod
    def get_weights(self) -> dict[str, np.ndarray]:
        """The stage's weights (and running statistics) as float32 numpy, by ``LAYER.PARAM``."""

    @abstractmethod
    def _set(self, weights: dict[str, np.ndarray]) -> None:
        """Copy ``weights`` (checked: this stage's names, right shapes, float32) into the engine's."""

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load the named weights of this stage; another stage's or a wrong shape is a DataError."""
        shapes = {name: shape for name, shape in self.spec.param_shapes().items() if self.spec.layer_of(name) in self.layers}
        checked = {}
        for name, value in weights.items():
            if name not in shapes:
                raise DataError(f"weight {name!r} is not in stage {self.layers[0]}..{self.layers[-1]}; "
                                f"its weights are {sorted(shapes)}.")
            array = np.ascontiguousarray(value, dtype=np.float32)
            if array.shape != shapes[name]:
                raise DataError(f"weight {name!r} has shape {array.shape}, but the stage's is {shapes[name]}.")
            checked[name] = array
        self._set(checked)


def limit_threads(engine: str, threads: int) -> None:
    """Let ``engine`` compute with ``threads`` threads in this process (0: leave its default). One
    thread per gate is what lets gates on threads of one process each keep one core busy."""
    if threads > 0:
        module, _ = STAGE_ENGINES[engine].split(":")
        importlib.import_module(module).set_threads(threads)


def build_stage(engine: str, spec: ModelSpec, layers: Sequence[str], seed: int = 0, options: TrainOptions | None = None,
                compensation: str = "stash") -> Stage:
    """The ``engine`` ("torch" or "mxnet") stage of ``spec``'s ``layers``."""
    if engine not in STAGE_ENGINES:
        raise ConfigError("gates.engine", [f"no stage engine {engine!r}; use one of {sorted(STAGE_ENGINES)}."])
    module, name = STAGE_ENGINES[engine].split(":")
    return getattr(importlib.import_module(module), name)(spec, layers, seed=seed, options=options,
                                                          compensation=compensation)
