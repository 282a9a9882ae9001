"""TorchBatches: any BatchSource as torch tensors, sharing memory with numpy.

Imported lazily by ``h3spark.feed.TorchBatches``, so h3spark imports without torch.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from h3spark.errors import UsageError, missing_dependency
from h3spark.feed._prefetch import prefetched
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

    ``pin_memory`` (default: when ``device`` is a CUDA device) copies each batch into
    page-locked memory in a background thread, a few batches ahead, and moves it with
    ``non_blocking=True``. A copy from pageable memory would wait for the GPU's queued work
    first (CUDA's rule for pageable transfers), so the loop could not run ahead of the GPU.
    """

    def __init__(self, source: BatchSource, device=None, non_blocking: bool = False, pin_memory: bool | None = None,
                 pin_ahead: int = 4):
        self.torch = _import_torch()
        self.source, self.device, self.non_blocking = source, device, non_blocking
        target = None if device is None else self.torch.device(device)
        self.pin_memory = bool(target is not None and target.type == "cuda") if pin_memory is None else pin_memory
        if self.pin_memory and not self.torch.cuda.is_available():
            raise UsageError("TorchBatches(pin_memory=True) needs CUDA, and torch sees no CUDA device here. "
                             "Leave pin_memory unset (it pins only for a CUDA device) or set it to False.")
        self.pin_ahead = pin_ahead

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[tuple]:
        if not self.pin_memory:
            for features, labels in self.source:
                yield self._tensor(features), None if labels is None else self._tensor(labels)
            return
        pinned = prefetched(lambda: self._pinning(), self.pin_ahead, name="h3spark-pin")
        for features, labels in pinned:
            yield self._moved(features, True), None if labels is None else self._moved(labels, True)

    def _tensor(self, values: np.ndarray):
        tensor = self.torch.from_numpy(values if values.flags.writeable else values.copy())
        return self._moved(tensor, self.non_blocking)

    def _pinning(self):
        """(In the pin thread.) The batches in page-locked memory, with this device current, as DataLoader does."""
        target = self.torch.device(self.device)
        if target.index is not None:
            self.torch.cuda.set_device(target)
        for features, labels in self.source:
            yield self._pinned(features), None if labels is None else self._pinned(labels)

    def _pinned(self, values: np.ndarray):
        """A page-locked copy of ``values`` (the one copy a read-only batch needs anyway)."""
        tensor = self.torch.empty(values.shape, dtype=self.torch.from_numpy(values[:0].copy()).dtype, pin_memory=True)
        np.copyto(tensor.numpy(), values)
        return tensor

    def _moved(self, tensor, non_blocking: bool):
        return tensor if self.device is None else tensor.to(self.device, non_blocking=non_blocking)
