"""The minibatch interface shared by datasets at rest and streams."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

from h3spark.feed._batching import Batch


class BatchSource(ABC):
    """Anything that yields :class:`Batch` (features, labels) minibatches of ``batch_size`` rows.

    :class:`~h3spark.feed.DataIterator` (a published dataset) and
    :class:`~h3spark.feed.StreamBatcher` (records from a stream) implement it, and the
    MXNet and torch adapters accept any BatchSource.
    """

    batch_size: int

    @property
    @abstractmethod
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one row's features."""

    @property
    @abstractmethod
    def feature_dtype(self) -> str:
        """numpy dtype name of the features."""

    @property
    def has_labels(self) -> bool:
        return True

    @abstractmethod
    def __iter__(self) -> Iterator[Batch]:
        """Yield batches; every batch but possibly the last has ``batch_size`` rows."""
