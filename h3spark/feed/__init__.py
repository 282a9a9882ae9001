"""Feeding: published datasets (file:// or hdfs://) and streams as minibatches for training.

>>> from h3spark.feed import DataIterator
>>> for features, labels in DataIterator("datasets/digits", batch_size=64, shuffle=True):
...     ...

Adapters: :class:`MXNetDataIter` (``mx.io.DataIter`` for Gluon and Module) and
:func:`torch_batches` (zero-copy torch tensors); both import their framework lazily.
"""

from h3spark.feed._batching import Batch
from h3spark.feed._columns import ColumnSpec, table_to_arrays, to_numpy
from h3spark.feed._iterator import DataIterator
from h3spark.feed._source import BatchSource

__all__ = [
    "Batch",
    "BatchSource",
    "ColumnSpec",
    "DataIterator",
    "table_to_arrays",
    "to_numpy",
]
