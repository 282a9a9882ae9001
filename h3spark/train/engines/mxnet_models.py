"""MXNet's home in h3spark: the one import (with its install hint), the model contract's MXNet
engine (:class:`MXNetModel`, any :class:`ModelSpec`), and saving a Gluon block a user's trial
built itself (:func:`save_block`).

    >>> model = MXNetModel(spec, seed=0, options=TrainOptions(optimizer="adam", lr=0.01))
    >>> loss = model.train_step(features, labels)

The MXNet engine (``engines.mxnet``) and tune's Gluon trials build, train, score and save through
MXNetModel. mxnet is imported when a function here is called, never at import of h3spark.
"""

from __future__ import annotations

import os

import numpy as np

from h3spark.errors import ConfigError, DataError, missing_dependency
from h3spark.train.engines.model import Model, TrainOptions, learning_rate
from h3spark.train.engines.spec import Layer, ModelSpec

# a spec's batchnorm weight names and Gluon's
_BATCHNORM_PARAMS = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean", "running_var": "running_var"}
_RUNNING_STATS = ("running_mean", "running_var")


def import_mxnet():
    """The mxnet module; a DependencyError with the install hint when it is missing."""
    try:
        import mxnet
    except ImportError:
        raise missing_dependency("mxnet", "Training with MXNet", extra="mxnet") from None
    return mxnet


def to_nd(array, dtype=np.float32):
    """``array`` (numpy) as a new float32 NDArray: an empty one filled by one synchronous copy. 35 us
    a call here, against 130-180 us for ``mx.nd.array``, whose ``arr[:] = source`` takes NDArray's
    general indexing path (about 5 % of a small CNN's step, twice a step)."""
    out = import_mxnet().nd.empty(np.shape(array), dtype=dtype)
    out._sync_copyfrom(array)  # converts to the dtype and C order itself when needed
    return out


def save_block(net, directory: str) -> str:
    """The block's parameters as ``model.params`` (MXNet's NDArray format, no pickle) in ``directory``."""
    path = os.path.join(directory, "model.params")
    net.save_parameters(path)
    return path


# --- the model contract ------------------------------------------------------------------------

class MXNetModel(Model):
    """The model contract on MXNet Gluon: a hybridized ``HybridSequential`` with one block per
    spec layer, its weights loaded from ``spec.initial_weights(seed)`` (the same start as every
    engine), trained by a ``gluon.Trainer`` with the options' optimizer, rate, weight decay and
    global-norm clipping.

        >>> model = MXNetModel(spec, seed=0, options=TrainOptions(optimizer="sgd", lr=0.1, momentum=0.9))
        >>> model.attach_kvstore(mx.kv.create("dist_sync"))   # distributed: before the first step
        >>> loss = model.train_step(features, labels)

    Both ``train_step`` and ``gradients`` run the forward in training mode (dropout, batch
    statistics). ``train_step`` moves batchnorm's running statistics, except in frozen layers,
    which keep every weight; ``gradients`` changes nothing (it puts the statistics back) and
    leaves out frozen layers. ``net`` and ``trainer`` are the Gluon objects (for MXNet-specific
    tools such as saving the trainer's optimizer state).
    """

    engine = "mxnet"

    def __init__(self, spec: ModelSpec, seed: int = 0, options: TrainOptions | None = None):
        super().__init__(spec, seed, options)
        mx = import_mxnet()
        mx.random.seed(seed)  # dropout's masks
        self.net, self._params = build_spec_net(spec)
        self.net.initialize(mx.init.Zero())
        self._set(spec.initial_weights(seed))
        self.net.hybridize(static_alloc=True, static_shape=True)
        self._trainable = {name: param for name, param in self._params.items() if param.grad_req != "null"}
        self._running_stats = {name: param for name, param in self._params.items() if name.rsplit(".", 1)[1] in _RUNNING_STATS}
        self._index_frozen()
        self._loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        self._on_kvstore, self._divisor = False, 1
        self.trainer = self._make_trainer()

    def attach_kvstore(self, kvstore, update_on_kvstore: bool = False) -> None:
        """Train through ``kvstore`` (an MXNet KVStore such as ``mx.kv.create("dist_sync")``, or
        a type name) from now on; call it before the first step (the optimizer starts afresh).

        ``update_on_kvstore=False``: workers push gradients and pull their sum, and each applies
        the same optimizer (rate per step, clipping of the summed gradient). True (required by
        dist_async): the servers run the optimizer; its rate schedule travels with it (counting
        the servers' updates) and clipping bounds each worker's gradient before the push. A
        ``*_sync`` store sums ``num_workers`` mean gradients, so the step divides by that number.
        """
        kind = getattr(kvstore, "type", kvstore)
        if not isinstance(kind, str):
            raise ConfigError("training.kvstore", [f"attach_kvstore takes an MXNet KVStore or its type name. Got {kvstore!r} instead."])
        if "async" in kind and not update_on_kvstore:
            raise ConfigError("training.kvstore", [f"a {kind} KVStore runs the optimizer on its servers; "
                                                   "attach it with update_on_kvstore=True."])
        self._on_kvstore = bool(update_on_kvstore)
        self._divisor = int(getattr(kvstore, "num_workers", 1)) if "_sync" in kind else 1
        self.trainer = self._make_trainer(kvstore)

    def _make_trainer(self, kvstore="device"):
        from h3spark.train.engines._mxnet_optim import optimizer_from_options

        optimizer = optimizer_from_options(self.options, scheduled=self._on_kvstore, first_step=self.step)
        params = list(self._trainable.values())  # spec order: the same KVStore keys on every worker
        return import_mxnet().gluon.Trainer(params, optimizer, kvstore=kvstore, update_on_kvstore=self._on_kvstore)

    def freeze(self, layers: list[str], frozen: bool = True) -> None:
        super().freeze(layers, frozen)
        for name, param in self._trainable.items():
            wanted = "null" if self.spec.layer_of(name) in self._frozen else "write"
            if param.grad_req != wanted:
                param.grad_req = wanted
        self._index_frozen()

    def _index_frozen(self) -> None:
        """Cache what a step touches: the weights it trains and the frozen running statistics it keeps."""
        self._live = {name: param for name, param in self._trainable.items() if param.grad_req != "null"}
        self._kept_stats = [param for name, param in self._running_stats.items() if self.spec.layer_of(name) in self._frozen]

    def train_step(self, features: np.ndarray, labels: np.ndarray) -> float:
        kept = _copies(self._kept_stats)
        loss = self._forward_backward(features, labels)
        if self._live:
            self._update()
        _put_back(kept)
        self.step += 1
        return float(loss.asscalar())

    def gradients(self, features: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        kept = _copies(self._running_stats.values())
        loss = self._forward_backward(features, labels)
        _put_back(kept)
        return float(loss.asscalar()), {name: param.grad().asnumpy() for name, param in self._live.items()}

    def logits(self, features: np.ndarray) -> np.ndarray:
        return self.net(to_nd(self.batch(features))).asnumpy()

    def _train_on_logits(self, features: np.ndarray, objective) -> float:
        mx = import_mxnet()
        kept = _copies(self._kept_stats)
        with mx.autograd.record():
            out = self.net(to_nd(features))
        loss, grad = objective(out.asnumpy())
        if self._live:
            out.backward(to_nd(grad))
            self._update()
        _put_back(kept)
        self.step += 1
        return loss

    def _input_backward(self, features: np.ndarray, objective) -> np.ndarray:
        """Recorded in predict mode (no dropout, running statistics); the weights' gradient buffers
        are written on the way (the next step overwrites them), the weights are not."""
        mx = import_mxnet()
        data = to_nd(features)
        data.attach_grad()
        with mx.autograd.record(train_mode=False):
            out = self.net(data)
        _, grad = objective(out.asnumpy())
        out.backward(to_nd(grad), train_mode=False)
        return data.grad.asnumpy()

    def _get(self) -> dict[str, np.ndarray]:
        return {name: param.data().asnumpy() for name, param in self._params.items()}

    def _set(self, weights: dict[str, np.ndarray]) -> None:
        mx = import_mxnet()
        for name, value in weights.items():
            self._params[name].set_data(mx.nd.ndarray.array(value, dtype=np.float32))

    def _forward_backward(self, features: np.ndarray, labels: np.ndarray):
        mx = import_mxnet()
        data, label = to_nd(self.batch(features)), to_nd(self._labels(labels, len(features)))
        with mx.autograd.record():
            loss = self._loss(self.net(data), label).mean()
        if self._live:
            loss.backward()
        return loss

    def _update(self) -> None:
        clip = self.options.clip_norm
        if not self._on_kvstore:
            self.trainer.set_learning_rate(learning_rate(self.options, self.step))
        if clip and self._on_kvstore:  # the servers reduce: bound this worker's gradient
            self._clip(clip)
        if clip and not self._on_kvstore:  # bound the reduced gradient, then update here
            self.trainer.allreduce_grads()
            self._clip(clip)
            self.trainer.update(self._divisor)
            return
        self.trainer.step(self._divisor)

    def _clip(self, max_norm: float) -> None:
        """Scale the gradients so that their global norm (all weights together) is at most ``max_norm``."""
        mx = import_mxnet()
        mx.gluon.utils.clip_global_norm([param.grad() for param in self._live.values()], max_norm, check_isfinite=False)

    def _labels(self, labels: np.ndarray, rows: int) -> np.ndarray:
        array = np.asarray(labels).reshape(-1)
        if len(array) != rows:
            raise DataError(f"the batch has {rows} rows of features but {len(array)} labels; give one label per row.")
        if len(array) and (array.min() < 0 or array.max() >= self.spec.classes):
            raise DataError(f"labels must be class indices in [0, {self.spec.classes}) (the model's outputs); "
                            f"this batch has labels from {array.min()} to {array.max()}.")
        return array.astype(np.float32)


def _copies(params) -> list:
    """(parameter, copy of its value) pairs, for :func:`_put_back` after a step."""
    return [(param, param.data().copy()) for param in params]


def _put_back(copies: list) -> None:
    for param, value in copies:
        param.set_data(value)


def build_spec_net(spec: ModelSpec):
    """The Gluon ``HybridSequential`` of ``spec`` (one block per layer, shapes given, so nothing is
    deferred) and its parameters by the spec's names (``conv1.weight``, ``bn0.running_mean``)."""
    mx = import_mxnet()
    net, params = mx.gluon.nn.HybridSequential(prefix="spec_"), {}
    with net.name_scope():
        for layer, before, _ in spec.shapes():
            block = _spec_block(mx.gluon.nn, layer, before)
            net.add(block)
            for param in layer.param_names():
                gluon_name = _BATCHNORM_PARAMS[param] if layer.type == "batchnorm" else param
                params[f"{layer.name}.{param}"] = getattr(block, gluon_name)
    return net, params


def _spec_block(nn, layer: Layer, before: tuple[int, ...]):
    prefix = f"{layer.name}_"
    if layer.type == "dense":
        # A dense layer's input is flat (the spec checks it): Gluon's default flatten=True computes the same
        # product as flatten=False, whose FullyConnected path measured 5-7 % slower a step (engines benchmark).
        return nn.Dense(layer["units"], activation=_activation(layer["activation"]), use_bias=layer["use_bias"],
                        in_units=before[0], prefix=prefix)
    if layer.type == "conv2d":
        kernel = layer["kernel"] if isinstance(layer["kernel"], int) else tuple(layer["kernel"])
        return nn.Conv2D(layer["filters"], kernel, strides=layer["stride"], padding=layer["padding"],
                         activation=_activation(layer["activation"]), use_bias=layer["use_bias"],
                         in_channels=before[0], prefix=prefix)
    if layer.type in ("maxpool", "avgpool"):
        pool = nn.MaxPool2D if layer.type == "maxpool" else nn.AvgPool2D
        return pool(layer["size"], strides=layer["stride"] or layer["size"], padding=layer["padding"], prefix=prefix)
    if layer.type == "batchnorm":
        return nn.BatchNorm(axis=1, momentum=layer["momentum"], epsilon=layer["epsilon"], in_channels=before[0], prefix=prefix)
    if layer.type == "dropout":
        return nn.Dropout(layer["rate"], prefix=prefix)
    if layer.type == "flatten":
        return nn.Flatten(prefix=prefix)
    function = _activation(layer["function"])
    return nn.Activation(function, prefix=prefix) if function else nn.HybridLambda("identity", prefix=prefix)


def _activation(name: str) -> str | None:
    return None if name == "linear" else name
