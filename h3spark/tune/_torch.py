"""The torch MLP that ``engine: torch`` trials train, fed by DataIterator + TorchBatches.

torch is imported only here and only inside the trial, on the Spark worker: the driver (the
pinned .venv, numpy 1.23 for MXNet) need not have it. Point ``spark.pyspark.python`` at an
interpreter that has torch (``scripts/setup_torch.sh`` makes ``.venv-torch``).
"""

from __future__ import annotations

import json
import os

import numpy as np

from h3spark.errors import missing_dependency
from h3spark.feed import Batch, BatchSource

_EVAL_BATCH = 4096


def import_torch():
    try:
        import torch
    except ImportError:
        error = missing_dependency("torch", "The torch experiment engine", extra="torch")
        error.args = (f"{error.args[0]}; or run the trials under an interpreter that has it, with the Spark conf "
                      "spark.pyspark.python=.venv-torch/bin/python (made by scripts/setup_torch.sh).",)
        raise error from None
    return torch


class ArrayBatches(BatchSource):
    """In-memory (features, labels) as minibatches, reshuffled each epoch: the holdout split's feed."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, batch_size: int, epochs: int = 1, seed: int | None = None):
        self.features, self.labels, self.batch_size, self.epochs, self.seed = features, labels, batch_size, epochs, seed
        self.batches_per_epoch = -(-len(labels) // batch_size)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape[1:])

    @property
    def feature_dtype(self) -> str:
        return self.features.dtype.name

    def __len__(self) -> int:
        return self.epochs * self.batches_per_epoch

    def __iter__(self):
        for epoch in range(self.epochs):
            order = np.arange(len(self.labels))
            if self.seed is not None:
                order = np.random.default_rng([self.seed, epoch]).permutation(order)
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                yield Batch(self.features[rows], self.labels[rows])


def feeds(uri: str | None, options: dict, holdout_fraction: float, seed: int) -> tuple[BatchSource, BatchSource]:
    """(train, eval) sources: the train split shuffled for ``epochs``, and validation/test when the
    dataset has one, else a seeded holdout of the train rows."""
    from h3spark.feed import DataIterator
    from h3spark.storage import read_manifest
    from h3spark.tune._models import _EVAL_SPLITS, train_and_eval_arrays

    batch_size, epochs = int(options["batch_size"]), int(options["epochs"])
    splits = read_manifest(uri).get("splits", {}) if uri else {}
    eval_split = next((name for name in _EVAL_SPLITS if name in splits), None)
    if eval_split is None:
        X, y, X_eval, y_eval = train_and_eval_arrays(uri, holdout_fraction, seed)
        return ArrayBatches(X, y, batch_size, epochs, seed), ArrayBatches(X_eval, y_eval, _EVAL_BATCH)
    train = DataIterator(uri, "train" if "train" in splits else None, batch_size=batch_size, epochs=epochs,
                         shuffle=True, seed=seed, cache=True)
    return train, DataIterator(uri, eval_split, batch_size=_EVAL_BATCH, cache=True)


def build_mlp(features: int, hidden, classes: int):
    """Linear-ReLU layers of ``hidden`` (an int or a list of widths), then ``classes`` logits."""
    torch = import_torch()
    widths = [features, *([hidden] if isinstance(hidden, (int, float, str)) else hidden)]
    layers = []
    for width_in, width_out in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(int(width_in), int(width_out)), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(int(widths[-1]), classes))


def fit_mlp(net, train: BatchSource, evaluate: BatchSource, options: dict, device: str, on_epoch) -> dict:
    """Adam on cross-entropy; after each epoch ``on_epoch(epoch, {"loss", "accuracy"})``."""
    from h3spark.feed import TorchBatches

    torch = import_torch()
    optimizer = torch.optim.Adam(net.parameters(), lr=float(options["lr"]))
    per_epoch = len(train) // int(options["epochs"])
    metrics, loss_sum, rows = {}, 0.0, 0
    for index, (x, y) in enumerate(TorchBatches(train, device=device)):
        net.train()
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x.float()), y.long(), reduction="sum")
        (loss / len(y)).backward()
        optimizer.step()
        loss_sum, rows = loss_sum + loss.item(), rows + len(y)
        if (index + 1) % per_epoch == 0:
            metrics = {"loss": loss_sum / rows, "accuracy": accuracy(net, evaluate, device)}
            on_epoch(index // per_epoch, metrics)
            loss_sum, rows = 0.0, 0
    return metrics


def accuracy(net, source: BatchSource, device: str) -> float:
    from h3spark.feed import TorchBatches

    torch = import_torch()
    correct, total = 0, 0
    net.eval()
    with torch.no_grad():
        for x, y in TorchBatches(source, device=device):
            correct += int((net(x.float()).argmax(dim=1) == y.long()).sum())
            total += len(y)
    return correct / max(total, 1)


def save_module(module, directory: str, spec: dict | None = None) -> str:
    """The module's state_dict as ``model.safetensors`` (``spec``, e.g. the layer widths, in its
    metadata), or ``model.npz`` without safetensors; neither holds a pickle."""
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    try:
        from safetensors.torch import save_file
    except ImportError:
        path = os.path.join(directory, "model.npz")
        np.savez(path, **{name: tensor.numpy() for name, tensor in state.items()})
        return path
    path = os.path.join(directory, "model.safetensors")
    save_file(state, path, metadata={"format": "pt", "h3spark": json.dumps(spec or {})})
    return path
