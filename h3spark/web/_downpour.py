"""The Downpour SGD master: the parameters in the parameter store, workers that pull and push.

    >>> master = DownpourMaster(config.web.downpour, MasterData.from_config(config.web.downpour, workdir))
    >>> worker = master.join({"batch_size": 16})          # a shard (the least held one) and settings
    >>> version, flat = master.pull()                      # the weights a worker computes on
    >>> master.apply(frame)                                # a gradients frame: summed gradients, its version
    {'applied': True, 'version': 1, 'delay': 0}

Each trainable weight is a :class:`~h3spark.train.store.Variable` of a LocalParameterStore with an
SGD updater (the momentum of the config, lr 1): the master scales each push by the rate of this
update (warm-up, and lr changed while it runs), so the store applies ``-rate * g``. Before that,
a push is clipped to ``clip_norm`` by its global norm, L2 adds ``weight_decay * w``, and DC-ASGD
(Zheng et al. 2017) compensates it with its true delay: ``g + lambda * g * g * (w_now - w_v)``
with ``w_v`` the weights of the version the push names (kept for every version handed out in the
last ``max_delay`` updates). A push older than ``max_delay`` updates, or computed on a version the
master never handed out, is refused, and its worker is told so.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from h3spark.config import DownpourConfig
from h3spark.errors import ConfigError, UsageError
from h3spark.train.engines.model import TrainOptions, learning_rate
from h3spark.train.engines.numpy_model import NumpyModel
from h3spark.train.engines.spec import ModelSpec, mlp_spec
from h3spark.train.store import LocalParameterStore, SGDUpdater
from h3spark.web._dataset import MasterData
from h3spark.web._frames import Frame, Layout

logger = logging.getLogger(__name__)

#: What a page may change while the master runs (``set``), with their bounds (low, high, low included).
LIVE_SETTINGS = {"lr": (0.0, 100.0, False), "dcasgd_lambda": (0.0, 100.0, True), "weight_decay": (0.0, 10.0, True),
                 "clip_norm": (0.0, 1e6, True), "warmup_steps": (0, 10**9, True), "max_delay": (0, 10**6, True)}
#: What a worker may choose for itself when it joins, with their bounds (inclusive).
WORKER_SETTINGS = {"batch_size": (1, 4096), "epochs": (1, 10_000), "n_fetch": (1, 10_000), "n_push": (1, 10_000),
                   "max_in_flight": (1, 64)}


def web_spec(config: DownpourConfig, mean: float | None = None, std: float | None = None) -> ModelSpec:
    """The MLP of ``config.model`` as a model spec, its weights drawn from normal(mean, std)."""
    model = config.model
    spec = mlp_spec(model.input_shape, model.hidden, model.classes, model.dropout, model.activation).to_dict()
    spec["init"] = {"kind": "normal", "mean": model.init.mean if mean is None else mean,
                    "std": model.init.std if std is None else std}
    return ModelSpec.from_dict(spec, where="web.downpour.model")


@dataclass
class WorkerInfo:
    """A connected worker: its shard (None: it trains on its user's examples), settings and counts."""

    id: str
    shard: int | None
    settings: dict
    joined_s: float
    pushes: int = 0
    refused: int = 0
    samples: int = 0
    loss: float | None = None
    examples: int = 0
    done: bool = False

    def summary(self) -> dict:
        return {"id": self.id, "shard": self.shard, "pushes": self.pushes, "refused": self.refused,
                "samples": self.samples, "loss": self.loss, "examples": self.examples, "done": self.done}


@dataclass
class Hyper:
    """The master's live settings."""

    lr: float
    dcasgd_lambda: float
    weight_decay: float
    clip_norm: float
    warmup_steps: int
    max_delay: int
    mean: float
    std: float


class DownpourMaster:
    """Holds the weights (version = updates applied), applies pushes, hands out shards and weights."""

    def __init__(self, config: DownpourConfig, data: MasterData | None, clock=time.monotonic):
        self.config, self.data, self._clock = config, data, clock
        training, init = config.training, config.model.init
        self.optimizer = training.optimizer
        self.hyper = Hyper(training.lr, training.dcasgd_lambda, training.weight_decay, training.clip_norm,
                           training.warmup_steps, training.max_delay, init.mean, init.std)
        self.spec = web_spec(config)
        if data is not None and data.train_features.shape[1] != self.spec.features:
            raise ConfigError("web.downpour.model", [
                f"input_shape {list(self.spec.input_shape)} takes {self.spec.features} values a row, but the pipeline "
                f"makes rows of {data.train_features.shape[1]} from {config.data.bundled}; set input_shape: "
                f"[{data.train_features.shape[1]}]."])
        self.layout = Layout(self.spec.param_shapes())
        self.store = LocalParameterStore()
        updater = SGDUpdater(lr=1.0, momentum=training.momentum)
        self.variables = [self.store.create(name, shape, updater) for name, shape, _ in self.layout.entries]
        self.model = NumpyModel(self.spec, seed=config.model.seed)
        self.version = 0
        self.history: dict[int, np.ndarray] = {}
        self.current = np.zeros(self.layout.size, np.float32)
        self.workers: dict[str, WorkerInfo] = {}
        self.applied = self.refused = self.samples = self.resets = 0
        self.scores: dict | None = None
        self._model_version = -1
        self._options: tuple[tuple[float, int], TrainOptions] | None = None
        self._ids = itertools.count(1)
        self._initialise(self.spec.initial_weights(config.model.seed))

    def _initialise(self, weights: dict[str, np.ndarray]) -> None:
        for variable in self.variables:
            variable.init(weights[variable.name])
        self.current = self.layout.flatten(weights)
        self.history = {self.version: self.current}

    # --- weights ----------------------------------------------------------------------------

    def pull(self) -> tuple[int, np.ndarray]:
        """The current version and weights (flat float32); kept while a push may name that version."""
        self.history[self.version] = self.current
        return self.version, self.current

    def apply(self, frame: Frame, worker: WorkerInfo | None = None) -> dict:
        """Apply a gradients frame (summed over ``frame.steps`` minibatches, computed on ``frame.version``)."""
        delay = self.version - frame.version
        backup = self.history.get(frame.version)
        refusal = self._refusal(frame.version, delay, backup is None)
        if refusal is not None:
            self.refused += 1
            if worker is not None:
                worker.refused += 1
            return {"applied": False, "version": self.version, "delay": delay, "reason": refusal}
        change = self._gradient(frame.values.astype(np.float64), backup, delay)
        parts = self.layout.unflatten(change.astype(np.float32))
        for variable in self.variables:
            variable.push(parts[variable.name])
            variable.update()
        self.version += 1
        self.current = self.layout.flatten({variable.name: variable.pull() for variable in self.variables})
        self.history = {v: w for v, w in self.history.items() if v >= self.version - self.hyper.max_delay}
        self.applied += 1
        self.samples += frame.rows
        if worker is not None:
            worker.pushes += 1
            worker.samples += frame.rows
        return {"applied": True, "version": self.version, "delay": delay}

    def _refusal(self, version: int, delay: int, unknown: bool) -> str | None:
        if delay > self.hyper.max_delay:
            return f"computed on version {version}, {delay} updates old (max_delay {self.hyper.max_delay}); pull again"
        if delay < 0 or unknown:
            return f"computed on version {version}, which the master did not hand out (it is at {self.version}); pull again"
        return None

    def _gradient(self, grad: np.ndarray, backup: np.ndarray, delay: int) -> np.ndarray:
        """What the store's SGD updater (lr 1) receives: the rate times the clipped, L2 and DC-ASGD gradient."""
        hyper = self.hyper
        if hyper.clip_norm > 0:
            norm = float(np.sqrt(np.dot(grad, grad)))
            if norm > hyper.clip_norm:
                grad = grad * (hyper.clip_norm / (norm + 1e-12))
        weights = self.current.astype(np.float64)
        total = grad + hyper.weight_decay * weights if hyper.weight_decay else grad
        if self.optimizer == "dcasgd" and delay > 0 and hyper.dcasgd_lambda > 0:
            total = total + hyper.dcasgd_lambda * grad * grad * (weights - backup)
        return learning_rate(self._schedule(), self.version) * total

    def _schedule(self) -> TrainOptions:
        """The rate's schedule (lr and warm-up), built again only when they change."""
        key = (self.hyper.lr, self.hyper.warmup_steps)
        if self._options is None or self._options[0] != key:
            self._options = (key, TrainOptions(optimizer="sgd", lr=key[0], warmup_steps=key[1]))
        return self._options[1]

    # --- settings ---------------------------------------------------------------------------

    def set(self, changes: dict) -> dict:
        """Change live settings (see LIVE_SETTINGS); a bad name or value is a UsageError naming it."""
        checked = {}
        for name, value in changes.items():
            if name not in LIVE_SETTINGS:
                raise UsageError(f"{name!r} cannot be set while the master runs; settable: {', '.join(LIVE_SETTINGS)} "
                                 "(and init mean/std with reset).")
            low, high, low_included = LIVE_SETTINGS[name]
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
            integral = not isinstance(low, int) or (number and float(value).is_integer())
            if not number or not integral or not (low <= value if low_included else low < value) or value > high:
                raise UsageError(f"{name} must be a{'n integer' if isinstance(low, int) else ' number'} in "
                                 f"{'[' if low_included else '('}{low}, {high}]. Got {value!r} instead.")
            checked[name] = int(value) if isinstance(low, int) else float(value)
        self.hyper = replace(self.hyper, **checked)
        logger.info("settings changed: %s master=%s", checked, self.config.name)
        return self.settings()

    def reset(self, mean: float, std: float) -> int:
        """Start again from weights drawn from normal(mean, std); pushes computed before are refused."""
        for name, value in (("mean", mean), ("std", std)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
                raise UsageError(f"reset needs a finite number for the init's {name}. Got {value!r} instead.")
        if std <= 0:
            raise UsageError(f"the init's std must be > 0. Got {std!r} instead.")
        self.resets += 1
        self.spec = web_spec(self.config, float(mean), float(std))
        self.hyper = replace(self.hyper, mean=float(mean), std=float(std))
        self.version += 1
        self._initialise(self.spec.initial_weights(self.config.model.seed + self.resets))
        logger.info("weights drawn again from normal(%g, %g) at version %d master=%s", mean, std, self.version,
                    self.config.name)
        return self.version

    def settings(self) -> dict:
        hyper, training = self.hyper, self.config.training
        return {"optimizer": self.optimizer, "momentum": training.momentum, **hyper.__dict__,
                "worker": {name: getattr(training, name) for name in WORKER_SETTINGS}}

    # --- workers ----------------------------------------------------------------------------

    def join(self, asked: dict, own_data: bool = False) -> WorkerInfo:
        """A new worker with ``asked`` settings over the defaults; a shard unless it trains on its own data."""
        settings = {name: getattr(self.config.training, name) for name in WORKER_SETTINGS}
        for name, value in asked.items():
            low, high = WORKER_SETTINGS.get(name, (None, None))
            if low is None:
                raise UsageError(f"a worker chooses {', '.join(WORKER_SETTINGS)}; {name!r} is not one of them.")
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise UsageError(f"{name} must be an integer in [{low}, {high}]. Got {value!r} instead.")
            settings[name] = value
        shard = None if own_data or self.data is None else self._free_shard()
        worker = WorkerInfo(f"w{next(self._ids)}", shard, settings, self._clock())
        self.workers[worker.id] = worker
        logger.info("worker %s joined (shard %s, %d workers) master=%s", worker.id, shard, len(self.workers),
                    self.config.name)
        return worker

    def _free_shard(self) -> int:
        held = [0] * self.data.shards
        for worker in self.workers.values():
            if worker.shard is not None:
                held[worker.shard] += 1
        return held.index(min(held))

    def leave(self, worker_id: str) -> None:
        worker = self.workers.pop(worker_id, None)
        if worker is not None:
            logger.info("worker %s left after %d pushes (%d workers) master=%s", worker_id, worker.pushes,
                        len(self.workers), self.config.name)

    # --- scores and predictions ---------------------------------------------------------------

    def _synced_model(self) -> NumpyModel:
        if self._model_version != self.version:
            self.model.set_weights(self.layout.unflatten(self.current))
            self.model.step = self._model_version = self.version
        return self.model

    def evaluate(self) -> dict | None:
        """Loss and accuracy on the held-out rows at the current version (None without data)."""
        if self.data is None:
            return None
        scores = self._synced_model().evaluate(self.data.holdout_features, self.data.holdout_labels)
        self.scores = {**scores, "version": self.version, "rows": len(self.data.holdout_labels)}
        return self.scores

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, int]:
        """Class probabilities of preprocessed rows at the current version, and that version."""
        return self._synced_model().predict(features), self.version

    def status(self) -> dict:
        """The master as an actor's report (docs/actor_network.md) with its workers."""
        losses = [worker.loss for worker in self.workers.values() if worker.loss is not None]
        scores = self.scores
        return {"actor": self.config.name, "state": "running", "step": self.version,
                "loss": float(np.mean(losses)) if losses else None,
                "evaluated": None if scores is None else {"rows": scores["rows"], "accuracy": scores["accuracy"],
                                                          "loss": scores["loss"]},
                "applied": self.applied, "refused": self.refused, "samples": self.samples,
                "workers": [worker.summary() for worker in self.workers.values()], "reported_at": time.time()}
