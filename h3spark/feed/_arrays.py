"""ArrayBatches: numpy arrays already in memory as a BatchSource (e.g. a seeded holdout of rows).

    >>> from h3spark.feed import ArrayBatches
    >>> for features, labels in ArrayBatches(X, y, batch_size=64, epochs=2, seed=0):
    ...     ...
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from h3spark.errors import DataError, UsageError
from h3spark.feed._batching import Batch
from h3spark.feed._source import BatchSource


class ArrayBatches(BatchSource):
    """``(features, labels)`` minibatches of in-memory arrays for ``epochs`` epochs.

    With a ``seed`` every epoch has its own order, drawn from (seed, epoch); without one the
    rows keep their order. ``len()`` counts the batches of all epochs, as DataIterator's does.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, batch_size: int, epochs: int = 1, seed: int | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UsageError(f"The 'batch_size' parameter of ArrayBatches must be an int >= 1. Got {batch_size!r} instead.")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise UsageError(f"The 'epochs' parameter of ArrayBatches must be an int >= 1. Got {epochs!r} instead.")
        if len(features) != len(labels):
            raise DataError(f"ArrayBatches got {len(features)} rows of features but {len(labels)} labels; they must match.")
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

    def __iter__(self) -> Iterator[Batch]:
        for epoch in range(self.epochs):
            yield from self.iter_epoch(epoch)

    def iter_epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of one epoch (its own order with a seed)."""
        order = np.arange(len(self.labels))
        if self.seed is not None:
            order = np.random.default_rng([self.seed, epoch]).permutation(order)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            yield Batch(self.features[rows], self.labels[rows])
