"""torch's home in h3spark: the one import (with its install hint) and the model contract's
:class:`TorchModel` (both from ``torch_model``), the MLP, its accuracy, saving and loading, and
the single-process training loop of tune's torch trials.

    >>> net = build_mlp(in_features=64, hidden=[128], classes=10, seed=0, dropout=0.2)
    >>> metrics = fit_mlp(net, train_source, eval_source, lr=0.01, epochs=3, device="cpu")
    >>> path = save_module(net, "model_dir", {"features": 64, "hidden": [128], "classes": 10, "dropout": 0.2})
    >>> same = load_mlp(path)

The DDP engine (``engines.torch``) and tune's torch trials build, score and save through these
functions. torch is imported when a function here is called, never at import of h3spark: the
driver (the pinned .venv, numpy 1.23 for MXNet) need not have it.
"""

from __future__ import annotations

import json
import os
from typing import Callable

import numpy as np

from h3spark.errors import DataError, missing_dependency
from h3spark.feed import BatchSource, TorchBatches
from h3spark.train.engines.mlp import check_dropout, mlp_widths
from h3spark.train.engines.torch_model import TorchModel, import_torch  # torch imported lazily

__all__ = ["TorchModel", "import_torch", "build_mlp", "flat", "accuracy", "fit_mlp", "save_module", "load_mlp"]

SPEC_KEY = "h3spark"  # the safetensors metadata entry holding the MLP's spec (JSON)


def build_mlp(in_features: int, hidden, classes: int, seed: int | None = None, dropout: float = 0.0):
    """Linear+ReLU layers of ``hidden`` (a width or a list of widths), each followed by
    Dropout(``dropout``) when it is > 0, then ``classes`` logits; initialised from ``seed``."""
    torch = import_torch()
    widths, dropout = [int(in_features), *mlp_widths(hidden)], check_dropout(dropout)
    if seed is not None:
        torch.manual_seed(seed)
    layers = []
    for width_in, width_out in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(width_in, width_out), torch.nn.ReLU()]
        if dropout:
            layers.append(torch.nn.Dropout(dropout))
    return torch.nn.Sequential(*layers, torch.nn.Linear(widths[-1], int(classes)))


def flat(features):
    """Each row's features as one vector of floats, as the MLP takes them (images are flattened)."""
    return features.reshape(features.shape[0], -1).float()


def accuracy(net, source, device, where: str = "the evaluation data") -> float:
    """The fraction of rows of ``source`` (a BatchSource) whose highest logit is the label, with
    ``net`` in eval mode. Empty data is a DataError naming ``where``."""
    torch = import_torch()
    correct = total = 0
    net.eval()
    with torch.no_grad():
        for features, labels in TorchBatches(source, device=device):
            correct += int((net(flat(features)).argmax(dim=1) == labels.long()).sum())
            total += len(labels)
    if total == 0:
        raise DataError(f"{where} is empty; there is nothing to score the model on.")
    return correct / total


def fit_mlp(net, train: BatchSource, evaluate: BatchSource, *, lr: float, epochs: int, device,
            on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Adam on cross-entropy over ``train`` (all ``epochs`` of it); after each epoch
    ``on_epoch(epoch, {"loss", "accuracy"})`` with the accuracy on ``evaluate``. Returns the last metrics."""
    torch = import_torch()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    per_epoch = len(train) // epochs
    metrics, loss_sum, rows = {}, 0.0, 0
    for index, (features, labels) in enumerate(TorchBatches(train, device=device)):
        net.train()
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(flat(features)), labels.long(), reduction="sum")
        (loss / len(labels)).backward()
        optimizer.step()
        loss_sum, rows = loss_sum + loss.item(), rows + len(labels)
        if (index + 1) % per_epoch == 0:
            metrics = {"loss": loss_sum / rows, "accuracy": accuracy(net, evaluate, device)}
            if on_epoch:
                on_epoch(index // per_epoch, metrics)
            loss_sum, rows = 0.0, 0
    return metrics


def save_module(module, directory: str, spec: dict | None = None) -> str:
    """The module's state_dict as ``model.safetensors`` (``spec``, the arguments of build_mlp, in
    its metadata), or ``model.npz`` without safetensors; neither holds a pickle."""
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    try:
        from safetensors.torch import save_file
    except ImportError:
        path = os.path.join(directory, "model.npz")
        np.savez(path, **{name: tensor.numpy() for name, tensor in state.items()})
        return path
    path = os.path.join(directory, "model.safetensors")
    save_file(state, path, metadata={"format": "pt", SPEC_KEY: json.dumps(spec or {})})
    return path


def load_mlp(path: str):
    """The MLP that :func:`save_module` wrote to ``path`` (a .safetensors file with its spec), in eval mode."""
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
    except ImportError:
        raise missing_dependency("safetensors", "Loading a saved torch MLP") from None
    with safe_open(path, "pt") as handle:
        spec = json.loads((handle.metadata() or {}).get(SPEC_KEY) or "{}")
    if not {"features", "hidden", "classes"} <= set(spec):
        raise DataError(f"{path} holds no MLP spec (features, hidden, classes) in its metadata; it was not written by save_module with a spec.")
    net = build_mlp(spec["features"], spec["hidden"], spec["classes"], dropout=spec.get("dropout", 0.0))
    net.load_state_dict(load_file(path), strict=True)
    return net.eval()
