"""MXNet's home in h3spark: the one import (with its install hint), the Gluon models (an MLP
and a CNN), their accuracy, saving, and a minibatch training loop for them.

    >>> net = build_mlp(hidden=[128], classes=10, dropout=0.2)
    >>> history = fit_gluon(net, X, y, X_val, y_val, epochs=3, lr=0.05, batch_size=64)

The MXNet engine (``engines.mxnet``) and tune's Gluon trials build, score and save through
these functions. mxnet is imported when a function here is called, never at import of h3spark.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Iterable

import numpy as np

from h3spark.errors import ConfigError, DataError, missing_dependency
from h3spark.train.engines.mlp import check_dropout, mlp_widths


def import_mxnet():
    """The mxnet module; a DependencyError with the install hint when it is missing."""
    try:
        import mxnet
    except ImportError:
        raise missing_dependency("mxnet", "Training with MXNet", extra="mxnet") from None
    return mxnet


def build_mlp(hidden: list[int] | int = 128, classes: int = 10, activation: str = "relu", dropout: float = 0.0):
    """Dense layers of ``hidden`` units, each followed by Dropout(``dropout``) when it is > 0, then
    ``classes`` logits. Parameters are initialised later (``net.initialize``)."""
    mx = import_mxnet()
    sizes, dropout = mlp_widths(hidden), check_dropout(dropout)
    net = mx.gluon.nn.HybridSequential()
    for size in sizes:
        net.add(mx.gluon.nn.Dense(size, activation=activation))
        if dropout:
            net.add(mx.gluon.nn.Dropout(dropout))
    net.add(mx.gluon.nn.Dense(classes))
    return net


def build_cnn(channels: int = 16, classes: int = 10, side: int = 28):
    """Two 3x3 conv layers with pooling, then ``classes`` logits; input is (N, 1, side, side)."""
    mx = import_mxnet()
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigError("model", [f"The 'channels' parameter of build_cnn must be an int >= 1. Got {channels!r} instead."])
    nn = mx.gluon.nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(channels, kernel_size=3, padding=1, activation="relu"), nn.MaxPool2D(2),
            nn.Conv2D(2 * channels, kernel_size=3, padding=1, activation="relu"), nn.GlobalAvgPool2D(),
            nn.Flatten(), nn.Dense(classes))
    return net


def image_side(width: int) -> int:
    """The side of square single-channel images with ``width`` features."""
    side = int(round(math.sqrt(width)))
    if side * side != width:
        raise ConfigError("model", [f"a CNN needs square images, but rows have {width} features (not a square number). Use the MLP."])
    return side


def fit_gluon(net, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, *, epochs: int = 3,
              lr: float = 0.05, batch_size: int = 64, optimizer: str = "adam", seed: int = 0,
              on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train with softmax cross-entropy; call ``on_epoch(epoch, metrics)`` after each epoch; return the last metrics."""
    from h3spark.feed import ArrayBatches

    mx = import_mxnet()
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(), force_reinit=True)
    trainer = mx.gluon.Trainer(net.collect_params(), optimizer, {"learning_rate": lr})
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    rng, metrics = np.random.default_rng(seed), {}
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            data, label = mx.nd.array(X[rows]), mx.nd.array(y[rows])
            with mx.autograd.record():
                loss = loss_fn(net(data), label)
            loss.backward()
            trainer.step(len(rows))
            total += float(loss.sum().asscalar())
        metrics = {"loss": total / len(y), "accuracy": accuracy(net, ArrayBatches(X_val, y_val, 1024))}
        if on_epoch:
            on_epoch(epoch, metrics)
    return metrics


def accuracy(net, batches: Iterable, where: str = "the evaluation data") -> float:
    """The fraction of rows of ``batches`` ((features, labels) numpy minibatches: a DataIterator,
    ArrayBatches, ...) whose highest logit is the label. Empty data is a DataError naming ``where``."""
    mx = import_mxnet()
    correct = total = 0
    for features, labels in batches:
        predicted = net(mx.nd.array(features)).argmax(axis=1).asnumpy().astype(np.int64)
        correct += int((predicted == labels).sum())
        total += len(labels)
    if total == 0:
        raise DataError(f"{where} is empty; there is nothing to score the model on.")
    return correct / total


def save_block(net, directory: str) -> str:
    """The block's parameters as ``model.params`` (MXNet's NDArray format, no pickle) in ``directory``."""
    path = os.path.join(directory, "model.params")
    net.save_parameters(path)
    return path
