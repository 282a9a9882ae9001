"""Cut a stream of (features, labels) chunks into fixed-size minibatches, optionally shuffled.

Unshuffled, a batch inside one chunk is a view of it (no copy); only a batch straddling
two chunks is concatenated. Shuffled, rows flow through a buffer of ``buffer_rows`` rows:
once it is full, each batch is drawn from random slots, which the next rows refill (as
tf.data's shuffle does, a batch at a time). The draws come from the ``rng`` the caller
seeds, so the order never depends on timing.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple

import numpy as np


class Batch(NamedTuple):
    """One minibatch: ``features`` of shape (n, *shape) and ``labels`` of shape (n,) or None."""

    features: np.ndarray
    labels: np.ndarray | None


Chunk = tuple[np.ndarray, "np.ndarray | None"]


def rebatch(chunks: Iterable[Chunk], batch_size: int, drop_last: bool) -> Iterator[Batch]:
    """Fixed-size batches from chunks in their order."""
    pending: list[Chunk] = []
    pending_rows = 0
    for features, labels in chunks:
        start = 0
        if pending:
            start = min(batch_size - pending_rows, len(features))
            pending.append((features[:start], _head(labels, start)))
            pending_rows += start
            if pending_rows < batch_size:
                continue
            yield _concat(pending)
            pending, pending_rows = [], 0
        stop = start + (len(features) - start) // batch_size * batch_size
        for begin in range(start, stop, batch_size):
            yield Batch(features[begin:begin + batch_size], _slice(labels, begin, begin + batch_size))
        if stop < len(features):
            pending, pending_rows = [(features[stop:], _slice(labels, stop, None))], len(features) - stop
    if pending and not drop_last:
        yield _concat(pending)


def shuffled_batches(chunks: Iterable[Chunk], batch_size: int, drop_last: bool, buffer_rows: int,
                     rng: np.random.Generator) -> Iterator[Batch]:
    """Batches drawn at random from a buffer of ``buffer_rows`` rows, refilled as rows leave it.

    The buffer is allocated once; each row is copied twice (into the buffer, out in a batch).
    """
    buffer = _ShuffleBuffer(max(buffer_rows, batch_size))
    for features, labels in chunks:
        position = 0
        while position < len(features):
            position += buffer.fill(features, labels, position)
            if buffer.full:
                yield buffer.draw(rng.choice(buffer.capacity, size=batch_size, replace=False))
    order = rng.permutation(buffer.filled_slots())
    if drop_last:
        order = order[: len(order) // batch_size * batch_size]
    for begin in range(0, len(order), batch_size):
        yield buffer.draw(order[begin:begin + batch_size], refill=False)


class _ShuffleBuffer:
    """Fixed-capacity rows; ``free`` lists the slots whose rows have been drawn."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.features: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.free = np.arange(capacity)

    @property
    def full(self) -> bool:
        return len(self.free) == 0

    def filled_slots(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.capacity), self.free, assume_unique=True) if self.features is not None else self.free[:0]

    def fill(self, features: np.ndarray, labels: np.ndarray | None, position: int) -> int:
        """Copy rows from ``position`` into free slots; returns how many were copied."""
        if self.features is None:
            self.features = np.empty((self.capacity,) + features.shape[1:], dtype=features.dtype)
            self.labels = None if labels is None else np.empty((self.capacity,) + labels.shape[1:], dtype=labels.dtype)
        count = min(len(self.free), len(features) - position)
        slots, self.free = self.free[:count], self.free[count:]
        rows = slice(position, position + count)
        if count and slots[-1] - slots[0] == count - 1 and np.all(np.diff(slots) == 1):
            slots = slice(int(slots[0]), int(slots[0]) + count)  # the first fill is sequential: a plain copy
        self.features[slots] = features[rows]
        if self.labels is not None:
            self.labels[slots] = labels[rows]
        return count

    def draw(self, slots: np.ndarray, refill: bool = True) -> Batch:
        batch = Batch(np.take(self.features, slots, axis=0), _take(self.labels, slots))
        if refill:
            self.free = slots
        return batch


def _gather_batches(features: np.ndarray, labels: np.ndarray | None, order: np.ndarray, batch_size: int) -> Iterator[Batch]:
    for begin in range(0, len(order), batch_size):
        rows = order[begin:begin + batch_size]
        yield Batch(np.take(features, rows, axis=0), _take(labels, rows))


def _concat(chunks: list[Chunk]) -> Batch:
    if len(chunks) == 1:
        return Batch(*chunks[0])
    features = np.concatenate([chunk[0] for chunk in chunks])
    labels = None if chunks[0][1] is None else np.concatenate([chunk[1] for chunk in chunks])
    return Batch(features, labels)


def _head(labels, count):
    return None if labels is None else labels[:count]


def _slice(labels, begin, end):
    return None if labels is None else labels[begin:end]


def _take(labels, rows):
    return None if labels is None else np.take(labels, rows, axis=0)
