"""Feeding: published datasets (file:// or hdfs://) and streams as minibatches for training.

>>> from h3spark.feed import DataIterator
>>> for features, labels in DataIterator("datasets/digits", batch_size=64, shuffle=True):
...     ...

Streams: :class:`StreamBatcher` gives the same minibatches from Arrow batches or JSON
records; :class:`ArrayBatches` from numpy arrays already in memory. Adapters:
:class:`MXNetDataIter` (``mx.io.DataIter`` for Gluon and Module) and :class:`TorchBatches`
(zero-copy torch tensors); both import their framework lazily.
"""

from h3spark.feed._arrays import ArrayBatches
from h3spark.feed._batching import Batch
from h3spark.feed._columns import ColumnSpec, table_to_arrays, to_numpy
from h3spark.feed._iterator import DataIterator
from h3spark.feed._source import BatchSource
from h3spark.feed._stream import StreamBatcher

_LAZY = {"MXNetDataIter": "h3spark.feed._mxnet", "TorchBatches": "h3spark.feed._torch"}

__all__ = [
    "ArrayBatches",
    "Batch",
    "BatchSource",
    "ColumnSpec",
    "DataIterator",
    "MXNetDataIter",
    "StreamBatcher",
    "TorchBatches",
    "table_to_arrays",
    "to_numpy",
]


def __getattr__(name: str):
    """Import the MXNet and torch adapters only when asked for (they import their framework)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'h3spark.feed' has no attribute {name!r}")
