"""TorchBatches: any BatchSource as torch tensors, sharing memory with numpy.

Imported lazily by ``h3spark.feed.TorchBatches``, so h3spark imports without torch.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from h3spark.errors import missing_dependency
from h3spark.feed._source import BatchSource


def _import_torch():
    try:
        import torch
    except ImportError:
        raise missing_dependency("torch", "The torch adapter of h3spark.feed", extra="torch") from None
    return torch


class TorchBatches:
    """Iterate a BatchSource as ``(features, labels)`` torch tensors.

    >>> from h3spark.feed import DataIterator, TorchBatches
    >>> for x, y in TorchBatches(DataIterator("datasets/mnist", batch_size=256), device="cuda"):
    ...     loss = model(x).sum()

    ``torch.from_numpy`` shares each writable batch's memory (no copy). Batches that are
    read-only views of Arrow memory are copied once first, because torch tensors are
    always writable and must not alias the (possibly cached) dataset. With ``device``,
    tensors are moved there (``non_blocking`` for pinned transfers).
    """

    def __init__(self, source: BatchSource, device=None, non_blocking: bool = False):
        self.torch = _import_torch()
        self.source, self.device, self.non_blocking = source, device, non_blocking

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[tuple]:
        for features, labels in self.source:
            yield self._tensor(features), None if labels is None else self._tensor(labels)

    def _tensor(self, values: np.ndarray):
        tensor = self.torch.from_numpy(values if values.flags.writeable else values.copy())
        return tensor if self.device is None else tensor.to(self.device, non_blocking=self.non_blocking)
