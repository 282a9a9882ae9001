"""The in-memory twin of the neural engines: the model contract in plain numpy.

    >>> model = NumpyModel(mlp_spec(64, [32], 10), seed=0, options=TrainOptions(optimizer="adam", lr=0.01))
    >>> loss = model.train_step(features, labels)
    >>> model.predict(features).shape
    (N, 10)

It runs dense, flatten, dropout and activation layers, with the forward and backward passes
written out, and a softmax cross-entropy loss; tests, actors and gates use it where MXNet
or torch would be too heavy. Weights start from ``spec.initial_weights(seed)`` as in every
engine; they hold float32 values (what get_weights returns and save writes) and the math runs
in float64, so the gradients are exact enough to check against finite differences.

Training options follow the torch engine's reading of :class:`TrainOptions`: at each step
the rate is ``learning_rate(options, step)``; the gradient of every trained weight is clipped
to ``clip_norm`` by their global norm; ``weight_decay`` is L2 added to the gradient (before
momentum or Adam's moments); ``sgd`` keeps gradients in its momentum buffer (buf = m*buf + g;
w -= lr*buf), ``adam`` is Adam with bias correction, ``dcasgd`` is delay-compensated SGD (step =
-lr*(g + wd*w + lambda*g*g*(w - backup)); backup <- w; with momentum, mom = m*mom + step).
Frozen layers get no update and keep their optimizer state.
"""

from __future__ import annotations

import numpy as np

from h3spark.errors import ConfigError, DataError
from h3spark.train.engines.losses import cross_entropy_rows
from h3spark.train.engines.model import Model, TrainOptions, learning_rate
from h3spark.train.engines.spec import Layer, ModelSpec

#: The layer types the numpy engine runs.
NUMPY_LAYERS = ("dense", "flatten", "dropout", "activation")


class NumpyModel(Model):
    """A spec'd network of dense, flatten, dropout and activation layers, trained in numpy."""

    engine = "numpy"

    def __init__(self, spec: ModelSpec, seed: int = 0, options: TrainOptions | None = None):
        super().__init__(spec, seed=seed, options=options)
        for layer in spec.layers:
            if layer.type not in NUMPY_LAYERS:
                raise ConfigError("training.model", [
                    f"layer {layer.name!r} is a {layer.type} layer; the numpy engine runs {', '.join(NUMPY_LAYERS[:-1])} "
                    f"and {NUMPY_LAYERS[-1]} layers. Use engine mxnet or torch for this spec."])
        self._weights = {name: _float32_values(value) for name, value in spec.initial_weights(seed).items()}
        self._slots: dict[str, dict[str, np.ndarray | int]] = {}  # per weight: the optimizer's state
        self._dropout_rng = np.random.default_rng(seed)

    # --- the contract ------------------------------------------------------------------------

    def train_step(self, features: np.ndarray, labels: np.ndarray) -> float:
        loss, grads = self.gradients(features, labels)
        self._apply(grads)
        return loss

    def gradients(self, features: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """The mean loss and the gradient of every weight of the layers not frozen, with dropout
        on, as training computes them; nothing changes but the dropout generator."""
        x = self.batch(features)
        targets = self.labels(labels, len(x))
        loss, grads, _ = self._backpropagate(x, lambda logits: _cross_entropy(logits, targets), training=True)
        return loss, grads

    def _train_on_logits(self, features: np.ndarray, objective) -> float:
        loss, grads, _ = self._backpropagate(features, objective, training=True)
        self._apply(grads)
        return loss

    def _input_backward(self, features: np.ndarray, objective) -> np.ndarray:
        return self._backpropagate(features, objective, training=False)[2]

    def logits(self, features: np.ndarray) -> np.ndarray:
        logits, _ = self._forward(self.batch(features).astype(np.float64), training=False)
        return logits.astype(np.float32)

    def _get(self) -> dict[str, np.ndarray]:
        return {name: value.astype(np.float32) for name, value in self._weights.items()}

    def _set(self, weights: dict[str, np.ndarray]) -> None:
        for name, value in weights.items():
            self._weights[name] = _float32_values(value)

    # --- forward and backward ----------------------------------------------------------------

    def _backpropagate(self, x: np.ndarray, objective, training: bool) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """The loss ``objective`` puts on the logits of the batch ``x``, the gradients of the
        weights of the layers not frozen, and the gradient with respect to ``x``."""
        logits, caches = self._forward(x.astype(np.float64), training=training)
        loss, upstream = objective(logits)
        grads: dict[str, np.ndarray] = {}
        for layer, cache in zip(reversed(self.spec.layers), reversed(caches)):
            upstream = self._backward(layer, cache, upstream, grads)
        return loss, {name: grad for name, grad in grads.items() if self.spec.layer_of(name) not in self.frozen()}, upstream

    def _forward(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, list]:
        caches = []
        for layer in self.spec.layers:
            x, cache = self._layer_forward(layer, x, training)
            caches.append(cache)
        return x, caches

    def _layer_forward(self, layer: Layer, x: np.ndarray, training: bool) -> tuple[np.ndarray, tuple]:
        if layer.type == "flatten":
            return x.reshape(len(x), -1), (x.shape,)
        if layer.type == "dropout":
            if not training or layer["rate"] == 0:
                return x, (None,)
            keep = (self._dropout_rng.random(x.shape) >= layer["rate"]) / (1.0 - layer["rate"])
            return x * keep, (keep,)
        if layer.type == "activation":
            out = _activate(layer["function"], x)
            return out, (x, out)
        z = x @ self._weights[f"{layer.name}.weight"].T
        if layer["use_bias"]:
            z = z + self._weights[f"{layer.name}.bias"]
        out = _activate(layer["activation"], z)
        return out, (x, z, out)

    def _backward(self, layer: Layer, cache: tuple, upstream: np.ndarray, grads: dict[str, np.ndarray]) -> np.ndarray:
        """The gradient with respect to the layer's input; its weights' gradients go into ``grads``."""
        if layer.type == "flatten":
            return upstream.reshape(cache[0])
        if layer.type == "dropout":
            return upstream if cache[0] is None else upstream * cache[0]
        if layer.type == "activation":
            return _activation_gradient(layer["function"], cache[0], cache[1], upstream)
        x, z, out = cache
        dz = _activation_gradient(layer["activation"], z, out, upstream)
        grads[f"{layer.name}.weight"] = dz.T @ x
        if layer["use_bias"]:
            grads[f"{layer.name}.bias"] = dz.sum(axis=0)
        return dz @ self._weights[f"{layer.name}.weight"]

    # --- optimizers --------------------------------------------------------------------------

    def _apply(self, grads: dict[str, np.ndarray]) -> None:
        """One update of every weight in ``grads``, at this step's rate, after clipping."""
        rate = learning_rate(self.options, self.step)
        for name, grad in _clipped(grads, self.options.clip_norm).items():
            self._update(name, grad, rate)
        self.step += 1

    def _update(self, name: str, grad: np.ndarray, rate: float) -> None:
        weight, slots = self._weights[name], self._slots.setdefault(name, {})
        change = (_dcasgd_change if self.options.optimizer == "dcasgd" else _descent_change)(
            self.options, weight, grad, rate, slots)
        self._weights[name] = _float32_values(weight + change)


def _descent_change(options: TrainOptions, weight: np.ndarray, grad: np.ndarray, rate: float, slots: dict) -> np.ndarray:
    """The change sgd (momentum buffer of gradients, as torch's) or adam makes; updates ``slots``."""
    grad = grad + options.weight_decay * weight
    if options.optimizer == "adam":
        count = slots["count"] = int(slots.get("count", 0)) + 1
        mean = slots["mean"] = options.beta1 * slots.get("mean", 0.0) + (1 - options.beta1) * grad
        var = slots["var"] = options.beta2 * slots.get("var", 0.0) + (1 - options.beta2) * grad * grad
        corrected = mean / (1 - options.beta1 ** count)
        return -rate * corrected / (np.sqrt(var / (1 - options.beta2 ** count)) + options.epsilon)
    if options.momentum > 0:
        grad = slots["buffer"] = options.momentum * slots["buffer"] + grad if "buffer" in slots else grad
    return -rate * grad


def _dcasgd_change(options: TrainOptions, weight: np.ndarray, grad: np.ndarray, rate: float, slots: dict) -> np.ndarray:
    """DC-ASGD's change (as MXNet's DCASGD): the gradient compensated by the weight's change since
    the last step (``backup``); with momentum, a buffer of steps. Updates ``slots``."""
    backup = slots.get("backup", weight)
    change = -rate * (grad + options.weight_decay * weight + options.dcasgd_lambda * grad * grad * (weight - backup))
    if options.momentum > 0:
        change = slots["momentum"] = options.momentum * slots.get("momentum", 0.0) + change
    slots["backup"] = weight.copy()
    return change


def _float32_values(value: np.ndarray) -> np.ndarray:
    """``value`` rounded to float32, held as float64: the weights are exactly what get_weights
    returns and save writes, as in the float32 engines, while the math runs in float64."""
    return np.asarray(value, dtype=np.float32).astype(np.float64)


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    loss, grad = cross_entropy_rows(logits, targets)
    return loss, grad / max(len(targets), 1)


def _activate(function: str, z: np.ndarray) -> np.ndarray:
    if function == "relu":
        return np.maximum(z, 0.0)
    if function == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    if function == "tanh":
        return np.tanh(z)
    if function == "softrelu":
        return np.logaddexp(0.0, z)
    return z


def _activation_gradient(function: str, z: np.ndarray, out: np.ndarray, upstream: np.ndarray) -> np.ndarray:
    """d loss / d z, from the activation's input ``z``, its output ``out`` and d loss / d out."""
    if function == "relu":
        return upstream * (z > 0)
    if function == "sigmoid":
        return upstream * out * (1.0 - out)
    if function == "tanh":
        return upstream * (1.0 - out * out)
    if function == "softrelu":
        return upstream * _activate("sigmoid", z)
    return upstream


def _clipped(grads: dict[str, np.ndarray], clip_norm: float) -> dict[str, np.ndarray]:
    """``grads`` scaled down so that their global norm is at most ``clip_norm`` (0: unchanged)."""
    if clip_norm <= 0 or not grads:
        return grads
    norm = float(np.sqrt(sum(float(np.sum(grad * grad)) for grad in grads.values())))
    if norm <= clip_norm:
        return grads
    scale = clip_norm / (norm + 1e-12)
    return {name: grad * scale for name, grad in grads.items()}
