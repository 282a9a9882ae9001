"""The MXNet Gluon stage (:class:`~h3spark.train.engines.stage.Stage`): a slice of a spec's layers
with MXNet's autograd and its own optimizer (the options' sgd or adam, through an MXNet updater).

The network runs imperatively (not hybridized: a static allocation would reuse the buffers that a
batch still in flight keeps for its backward pass). MXNet's autograd keeps the weight arrays a
forward pass used by reference, and the updater changes them in place, so:

- ``none``: the backward pass reads the current weights;
- ``stash`` and ``dcasgd``: the forward pass runs on copies of the weights of its version, swapped
  into the parameters for the forward pass only (Gluon reads ``param.data()`` at every call) and
  marked as autograd variables whose gradient buffers are the parameters' own, so the backward pass
  writes the parameters' gradients from the stashed weights. One copy per version in flight.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from h3spark.train.engines.model import TrainOptions, learning_rate
from h3spark.train.engines.mxnet_models import build_spec_net, import_mxnet, to_nd
from h3spark.train.engines.spec import ModelSpec
from h3spark.train.engines.stage import Stage



class MXNetStage(Stage):
    """A stage on MXNet Gluon (CPU)."""

    engine = "mxnet"

    def __init__(self, spec: ModelSpec, layers: Sequence[str], seed: int = 0, options: TrainOptions | None = None,
                 compensation: str = "stash", first: bool | None = None):
        super().__init__(spec, layers, seed=seed, options=options, compensation=compensation, first=first)
        self._mx = mx = import_mxnet()
        from h3spark.train.engines._mxnet_optim import optimizer_from_options

        self.net, self._params = build_spec_net(self.sub_spec)
        self.net.initialize(mx.init.Zero())
        self.set_weights(self.initial_weights())
        self._trainable = {name: param for name, param in self._params.items() if param.grad_req != "null"}
        optimizer = optimizer_from_options(self.options)
        self._optimizer, self._updater = optimizer, mx.optimizer.get_updater(optimizer)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.net(to_nd(batch)).asnumpy()

    def _forward(self, batch: np.ndarray):
        mx = self._mx
        data = to_nd(batch)
        if not self.first:
            data.attach_grad()
        stash = self._hold_stash() if self.compensation != "none" else None
        live = self._swap_in(stash) if stash is not None else None
        try:
            with mx.autograd.record():
                out = self.net(data)
        finally:
            if live is not None:
                self._swap_in(live)
        return out.asnumpy(), (data, out)

    def _backward(self, kept, grad_output: np.ndarray, version: int, delay: int):
        mx = self._mx
        data, out = kept
        out.backward(to_nd(grad_output))
        if self.compensation == "dcasgd" and delay > 0:
            lamda, stashed = self.options.dcasgd_lambda, self._stash[version]
            for name, param in self._trainable.items():
                grad = param.grad()
                grad[:] += lamda * grad * grad * (param.data() - stashed[name])
        self._release(version)
        self._step()
        return None if self.first else data.grad.asnumpy()

    def _step(self) -> None:
        mx = self._mx
        grads = [param.grad() for param in self._trainable.values()]
        if self.options.clip_norm > 0:
            mx.gluon.utils.clip_global_norm(grads, self.options.clip_norm, check_isfinite=False)
        self._optimizer.set_learning_rate(learning_rate(self.options, self.version))
        for index, (param, grad) in enumerate(zip(self._trainable.values(), grads)):
            self._updater(index, grad, param.data())

    # --- the stash ---------------------------------------------------------------------------

    def _copy_weights(self) -> dict:
        copies = {name: param.data().copy() for name, param in self._trainable.items()}
        self._mx.autograd.mark_variables(list(copies.values()), [param.grad() for param in self._trainable.values()])
        return copies

    def _swap_in(self, arrays: dict) -> dict:
        """Put ``arrays`` in the parameters' place (Gluon keeps one array per context in ``_data``);
        the arrays that were there."""
        previous = {}
        for name, param in self._trainable.items():
            previous[name] = param._data[0]
            param._data[0] = arrays[name]
        return previous

    # --- weights -----------------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: param.data().asnumpy().astype(np.float32, copy=True) for name, param in self._params.items()}

    def _set(self, weights: dict[str, np.ndarray]) -> None:
        for name, value in weights.items():
            self._params[name].set_data(self._mx.nd.ndarray.array(value))


def set_threads(threads: int) -> None:
    """The OpenMP threads MXNet's operators use in this process (its C API's ``MXSetNumOMPThreads``)."""
    import ctypes

    mx = import_mxnet()
    mx.base.check_call(mx.base._LIB.MXSetNumOMPThreads(ctypes.c_int(threads)))
