"""The PyTorch stage (:class:`~h3spark.train.engines.stage.Stage`): a slice of a spec's layers with
torch autograd and its own optimizer.

The forward pass of a training batch builds its autograd graph and keeps it until the batch's
backward pass. What the graph saves for the backward pass goes through a saved-tensors hook,
which is how the compensation chooses the weights the backward pass sees:

- ``none``: the hook keeps the weight tensors themselves, so the backward pass reads them as
  the optimizer left them (current weights; the hook also lets the in-place updates past
  autograd's version check, which would otherwise refuse a graph whose weights changed);
- ``stash`` and ``dcasgd``: a weight saved by the forward pass is replaced by the same view of a
  copy of the weights at the batch's forward version. One copy per version, taken at the first
  forward pass of that version and dropped when no batch of that version is in flight.

Gradients still flow to the live parameters (the graph's edges are not touched), where the
optimizer (``_torch_net.make_optimizer``) updates them in place.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from h3spark.train.engines.model import TrainOptions, learning_rate
from h3spark.train.engines.spec import ModelSpec
from h3spark.train.engines.stage import Stage
from h3spark.train.engines.torch_model import import_torch


class TorchStage(Stage):
    """A stage on PyTorch (CPU unless ``device`` says otherwise)."""

    engine = "torch"

    def __init__(self, spec: ModelSpec, layers: Sequence[str], seed: int = 0, options: TrainOptions | None = None,
                 compensation: str = "stash", first: bool | None = None, device: str = "cpu"):
        super().__init__(spec, layers, seed=seed, options=options, compensation=compensation, first=first)
        self._torch = torch = import_torch()
        from h3spark.train.engines import _torch_net

        self.device = torch.device(device)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed * 1009 + spec.layers.index(self.sub_spec.layers[0]))  # each stage its own masks
        self.network = _torch_net.build_network(self.sub_spec, self.device, generator)
        self._state = {name: tensor for name, tensor in self.network.state_dict(keep_vars=True).items()
                       if not name.endswith("num_batches_tracked")}
        self.set_weights(self.initial_weights())
        self._params = dict(self.network.named_parameters())
        self._storage = {param.untyped_storage().data_ptr(): name for name, param in self._params.items()}
        self.optimizer = _torch_net.make_optimizer(self.options, list(self._params.values()))

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        self.network.eval()
        with torch.no_grad():
            return self.network(torch.from_numpy(batch.copy()).to(self.device)).cpu().numpy()

    def _forward(self, batch: np.ndarray):
        torch = self._torch
        self.network.train()
        data = torch.from_numpy(batch.copy()).to(self.device).requires_grad_(not self.first)
        stash = self._hold_stash() if self.compensation != "none" else None
        with torch.autograd.graph.saved_tensors_hooks(lambda tensor: self._pack(tensor, stash), _unpack):
            out = self.network(data)
        return out.detach().cpu().numpy(), (data, out)

    def _backward(self, kept, grad_output: np.ndarray, version: int, delay: int):
        torch = self._torch
        data, out = kept
        self.optimizer.zero_grad(set_to_none=True)
        out.backward(torch.from_numpy(grad_output.copy()).to(self.device))
        if self.compensation == "dcasgd" and delay > 0:
            self._compensate(self._stash[version])
        self._release(version)
        self._step()
        return None if self.first else data.grad.detach().cpu().numpy()

    def _compensate(self, stashed: dict) -> None:
        """DC-ASGD: g + lambda * g * g * (w_now - w_forward), per weight."""
        lamda = self.options.dcasgd_lambda
        with self._torch.no_grad():
            for name, param in self._params.items():
                if param.grad is not None:
                    param.grad.add_(lamda * param.grad * param.grad * (param - stashed[name]))

    def _step(self) -> None:
        if self.options.clip_norm > 0:
            self._torch.nn.utils.clip_grad_norm_(list(self._params.values()), self.options.clip_norm)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.options, self.version)
        self.optimizer.step()

    def _copy_weights(self) -> dict:
        return {name: param.detach().clone() for name, param in self._params.items()}

    def _pack(self, tensor, stash: dict | None):
        """What the graph saves for ``tensor``: a weight's stashed copy (same view), else the tensor."""
        if stash is None or tensor.layout != self._torch.strided:
            return tensor
        name = self._storage.get(tensor.untyped_storage().data_ptr())
        if name is None:
            return tensor
        return stash[name].as_strided(tensor.size(), tensor.stride(), tensor.storage_offset())

    # --- weights -----------------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: tensor.detach().cpu().numpy().astype(np.float32, copy=True)
                for name, tensor in self._state.items()}

    def _set(self, weights: dict[str, np.ndarray]) -> None:
        with self._torch.no_grad():
            for name, value in weights.items():
                self._state[name].copy_(self._torch.from_numpy(value))


def set_threads(threads: int) -> None:
    """torch's intra-op threads in this process (``torch.set_num_threads``)."""
    import_torch().set_num_threads(threads)


def _unpack(saved):
    return saved
