"""MXNetDataIter: any BatchSource as an ``mx.io.DataIter`` for Gluon and Module.

Imported lazily by ``h3spark.feed.MXNetDataIter``, so h3spark imports without MXNet.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from h3spark.errors import DataError, missing_dependency
from h3spark.feed._batching import Batch
from h3spark.feed._source import BatchSource

try:
    import mxnet as mx
except ImportError:  # pragma: no cover - depends on the environment
    raise missing_dependency("mxnet", "The MXNet data iterator", extra="mxnet") from None


class MXNetDataIter(mx.io.DataIter):
    """Batches of a BatchSource as ``mx.io.DataBatch`` of NDArrays, one epoch per ``reset()``.

    >>> from h3spark.feed import DataIterator, MXNetDataIter
    >>> train = MXNetDataIter(DataIterator("datasets/mnist", batch_size=256, shuffle=True))
    >>> for epoch in range(2):
    ...     train.reset()                      # epoch 0, then 1 (each its own shuffle)
    ...     for batch in train:
    ...         x, y = batch.data[0], batch.label[0]

    The first ``reset()`` (or the first batch) starts epoch 0; each later ``reset()`` after a
    started epoch moves to the next one. Features are shared with numpy without a copy
    (``mx.nd.from_numpy``) when contiguous; labels are cast to ``label_dtype``. With
    ``pad_last``, a short last batch is filled up to ``batch_size`` by repeating its rows
    and ``DataBatch.pad`` says how many, as Module expects.
    """

    def __init__(self, source: BatchSource, data_name: str = "data", label_name: str = "softmax_label",
                 label_dtype: str = "float32", pad_last: bool = False):
        super().__init__(source.batch_size)
        self.source, self.data_name, self.label_name = source, data_name, label_name
        self.label_dtype, self.pad_last = label_dtype, pad_last
        self.epoch = 0
        self._batches: Iterator[Batch] | None = None
        self._started = False

    @property
    def provide_data(self):
        shape = (self.batch_size,) + tuple(self.source.feature_shape)
        return [mx.io.DataDesc(self.data_name, shape, np.dtype(self.source.feature_dtype))]

    @property
    def provide_label(self):
        if not self.source.has_labels:
            return []
        return [mx.io.DataDesc(self.label_name, (self.batch_size,), np.dtype(self.label_dtype))]

    def __len__(self) -> int:
        """Batches per epoch, when the source knows it."""
        count = getattr(self.source, "batches_per_epoch", None)
        if count is None:
            raise TypeError(f"{type(self.source).__name__} has no known length (it is a stream).")
        return count

    def reset(self) -> None:
        self._close()
        if self._started:
            self.epoch += 1
            self._started = False

    def next(self) -> mx.io.DataBatch:
        if self._batches is None:
            self._batches = self._epoch_batches()
            self._started = True
        try:
            features, labels = next(self._batches)
        except StopIteration:
            raise StopIteration from None
        pad = self.batch_size - len(features) if self.pad_last else 0
        if pad:
            features, labels = _fill(features, pad), None if labels is None else _fill(labels, pad)
        label = [] if labels is None else [mx.nd.array(labels, dtype=self.label_dtype)]
        return mx.io.DataBatch(data=[_to_ndarray(features)], label=label, pad=pad,
                               provide_data=self.provide_data, provide_label=self.provide_label)

    def _epoch_batches(self) -> Iterator[Batch]:
        iter_epoch = getattr(self.source, "iter_epoch", None)
        return iter_epoch(self.epoch) if iter_epoch else iter(self.source)

    def _close(self) -> None:
        if self._batches is not None:
            getattr(self._batches, "close", lambda: None)()
            self._batches = None

    def __del__(self):
        self._close()


def _fill(values: np.ndarray, pad: int) -> np.ndarray:
    if len(values) == 0:
        raise DataError("cannot pad an empty batch.")
    return np.concatenate([values, np.resize(values, (pad,) + values.shape[1:])])


def _to_ndarray(values: np.ndarray):
    """Zero-copy when numpy's memory can be shared, a copy otherwise."""
    if values.flags.c_contiguous and values.dtype.isnative:
        return mx.nd.from_numpy(values, zero_copy=True)
    return mx.nd.array(values, dtype=values.dtype)
