"""The PyTorch engine of the model contract (:class:`~h3spark.train.engines.model.Model`), and
the one import of torch (:func:`import_torch`, with its install hint).

    >>> model = TorchModel(spec, seed=0, options=TrainOptions(optimizer="sgd", lr=0.1, momentum=0.9), device="cpu")
    >>> loss = model.train_step(features, labels)
    >>> model.get_weights(["conv1"])                      # {"conv1.weight": ndarray, "conv1.bias": ndarray}

The network (``network``, an ``nn.Sequential`` with one child per spec layer, named by the
layer) starts from ``spec.initial_weights(seed)``, the same numpy draw as every engine's.
Training passes (train_step, gradients) go through ``module``: the network itself, or its
DistributedDataParallel wrapper once :meth:`TorchModel.wrap_ddp` was called (the torch DDP
engine does this after ``torch.distributed.init_process_group``), so every rank's backward
averages the gradients. Inference (logits) and the weights always use ``network``.

Training options (:class:`~h3spark.train.engines.model.TrainOptions`), at every step:
the rate ``learning_rate(options, step)`` is set on every param group; gradients are clipped
to ``clip_norm`` by their global norm; ``weight_decay`` is L2 added to the gradient (torch's
``weight_decay`` of SGD and Adam, coupled as MXNet's ``wd``, not AdamW's decoupled decay).
Optimizers: ``sgd`` is ``torch.optim.SGD``, whose momentum buffer holds gradients
(buf = m*buf + g; w -= lr*buf) where MXNet's holds steps (mom = m*mom - lr*g; w += mom): the
two agree while the rate is constant and differ only in how a changing rate weighs past
gradients. ``adam`` is ``torch.optim.Adam``; ``dcasgd`` is :class:`_torch_net.DCASGD`.
Frozen layers (:meth:`Model.freeze`) get no update: their gradients are dropped before
clipping, and a frozen batchnorm uses and keeps its running statistics (as Keras does).
Batchnorm's running variance is torch's, Bessel-corrected (MXNet's is the biased batch
variance): the same weights give the same outputs in both engines, but their training moves
``running_var`` slightly differently.
"""

from __future__ import annotations

import math

import numpy as np

from h3spark.errors import DataError, DependencyError, missing_dependency
from h3spark.train.engines.model import Model, TrainOptions, learning_rate
from h3spark.train.engines.spec import ModelSpec


def import_torch():
    """The torch module; a DependencyError with the install hint when it is missing."""
    try:
        import torch
    except ImportError:
        hint = missing_dependency("torch", "Training with PyTorch", extra="torch")
        raise DependencyError(f"{hint}; or run the training processes under an interpreter that has it: "
                              "scripts/setup_torch.sh makes .venv-torch, which training uses through H3SPARK_WORKER_PYTHON "
                              "and experiments through the Spark conf spark.pyspark.python=.venv-torch/bin/python.") from None
    return torch


class TorchModel(Model):
    """A spec'd network trained with PyTorch on ``device`` ("cpu", "cuda", "cuda:1", ...)."""

    engine = "torch"

    def __init__(self, spec: ModelSpec, seed: int = 0, options: TrainOptions | None = None, device: str = "cpu"):
        super().__init__(spec, seed=seed, options=options)
        self._torch = torch = import_torch()
        from h3spark.train.engines import _torch_net

        self.device = torch.device(device)
        self._generator = torch.Generator(device=self.device)  # dropout masks: reproducible from the seed
        self._generator.manual_seed(seed)
        self.network = _torch_net.build_network(spec, self.device, self._generator)
        self.module = self.network  # what forward passes call: the network, or its DDP wrapper
        self._state = {name: tensor for name, tensor in self.network.state_dict(keep_vars=True).items()
                       if not name.endswith("num_batches_tracked")}
        self._set(spec.initial_weights(seed))
        self.optimizer = _torch_net.make_optimizer(self.options, self.network.parameters())

    def wrap_ddp(self, device_ids: list[int] | None = None, rank: int = 0):
        """Wrap the network in DistributedDataParallel (the process group must be initialised):
        gradients are averaged over the ranks in every backward pass. ``device_ids`` as DDP's
        (None on CPU, ``[local_rank]`` on CUDA). Dropout masks are redrawn from the seed and
        ``rank``, so the ranks drop different units. Returns the wrapper (also ``module``)."""
        from torch.nn.parallel import DistributedDataParallel

        self._generator.manual_seed(self.seed * 100003 + rank)
        self.module = DistributedDataParallel(self.network, device_ids=device_ids)
        return self.module

    # --- the contract ------------------------------------------------------------------------

    def train_step(self, features: np.ndarray, labels: np.ndarray) -> float:
        return float(self.train_tensors(features, labels))

    def train_tensors(self, features, labels):
        """:meth:`train_step` for a loop that feeds tensors (``TorchBatches``: on the device already,
        copied non_blocking): a tensor batch is used as it is, not copied through numpy, and the loss
        comes back as a 0-d tensor on the device, so the loop waits for the device only when it
        reads one. Tensor labels are not range-checked (that would wait too): check the data's
        labels before training, as ``h3spark train`` does. numpy batches are checked as ever."""
        loss = self._loss_backward(*self._inputs(features, labels))
        self._optimizer_step()
        return loss

    def gradients(self, features: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """The mean loss and the gradient of every weight of the layers not frozen, as training
        computes them (dropout on, batch statistics), changing nothing: not the weights, not
        batchnorm's running statistics."""
        running = {name: tensor.detach().clone() for name, tensor in self.network.named_buffers()}
        try:
            loss = self._backward(features, labels)
        finally:
            with self._torch.no_grad():
                for name, tensor in self.network.named_buffers():
                    tensor.copy_(running[name])
        grads = {name: param.grad.detach().cpu().numpy().copy() for name, param in self.network.named_parameters()
                 if param.grad is not None}
        self.optimizer.zero_grad(set_to_none=True)
        return loss, grads

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Through ``network``, never the DDP wrapper: inference is local, and a wrapper's forward
        would wait for the other ranks (it broadcasts batchnorm's buffers)."""
        torch = self._torch
        self.network.eval()
        with torch.no_grad():
            out = self.network(torch.from_numpy(self.batch(features)).to(self.device))
        return out.cpu().numpy()

    def _train_on_logits(self, features: np.ndarray, objective) -> float:
        torch = self._torch
        self._train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        out = self.module(torch.from_numpy(features).to(self.device))
        loss, grad = objective(out.detach().cpu().numpy())
        out.backward(torch.from_numpy(np.asarray(grad, dtype=np.float32)).to(self.device))
        self._drop_frozen_gradients()
        self._optimizer_step()
        return loss

    def _input_backward(self, features: np.ndarray, objective) -> np.ndarray:
        """Through ``network`` in eval mode, with ``torch.autograd.grad``: no weight's gradient is
        touched, so a training step in progress elsewhere is not disturbed."""
        torch = self._torch
        self.network.eval()
        data = torch.from_numpy(features).to(self.device).requires_grad_(True)
        out = self.network(data)
        _, grad = objective(out.detach().cpu().numpy())
        (wanted,) = torch.autograd.grad(out, data, torch.from_numpy(np.asarray(grad, dtype=np.float32)).to(self.device))
        return wanted.cpu().numpy()

    def _get(self) -> dict[str, np.ndarray]:
        return {name: tensor.detach().cpu().numpy().astype(np.float32, copy=True) for name, tensor in self._state.items()}

    def _set(self, weights: dict[str, np.ndarray]) -> None:
        torch = self._torch
        with torch.no_grad():
            for name, value in weights.items():
                self._state[name].copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

    # --- helpers -----------------------------------------------------------------------------

    def _backward(self, features: np.ndarray, labels: np.ndarray) -> float:
        """Forward in training mode and backward; leaves the gradients of unfrozen layers."""
        return float(self._loss_backward(*self._inputs(features, labels)))

    def _inputs(self, features, labels):
        """``(data, target)`` on the device: numpy batches checked (Model.batch, Model.labels),
        tensors reshaped to the spec's input and cast (no-ops when they already are)."""
        torch = self._torch
        if not torch.is_tensor(features):
            data = torch.from_numpy(self.batch(features)).to(self.device)
            return data, torch.from_numpy(self.labels(labels, len(data))).to(self.device)
        # every step of a tensor-fed loop comes here: shapes are read once and nothing is reshaped
        # that already has its shape (a reshape or len() of a tensor costs microseconds in Python)
        shape, input_shape = features.shape, self.spec.input_shape
        if not shape or math.prod(shape[1:]) != self.spec.features:
            raise DataError(f"the model takes rows of shape {input_shape} ({self.spec.features} values); "
                            f"got a batch of shape {tuple(shape)}.")
        data = features.to(self.device, torch.float32, non_blocking=True)
        if shape[1:] != input_shape:
            data = data.reshape(shape[0], *input_shape)
        target = (labels if torch.is_tensor(labels) else torch.as_tensor(labels)).to(self.device, torch.long, non_blocking=True)
        if target.dim() != 1:
            target = target.reshape(-1)
        if target.shape[0] != shape[0]:
            raise DataError(f"the batch has {shape[0]} rows of features but {target.shape[0]} labels; give one label per row.")
        return data, target

    def _loss_backward(self, data, target):
        """The mean loss (a detached 0-d tensor) of a forward in training mode, and its backward."""
        self._train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._torch.nn.functional.cross_entropy(self.module(data), target)
        loss.backward()
        self._drop_frozen_gradients()
        return loss.detach()

    def _drop_frozen_gradients(self) -> None:
        for layer in self.frozen():
            for param in getattr(self.network, layer).parameters():
                param.grad = None  # the optimizers skip a parameter without a gradient

    def _optimizer_step(self) -> None:
        """Clip the gradients, set this step's rate, update, and count the step."""
        if self.options.clip_norm > 0:
            self._torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.options.clip_norm)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.options, self.step)
        self.optimizer.step()
        self.step += 1

    def _train_mode(self) -> None:
        self.module.train()
        for layer in self.frozen():
            getattr(self.network, layer).eval()  # a frozen batchnorm keeps its running statistics
