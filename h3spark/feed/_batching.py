"""Cut a stream of (features, labels) chunks into fixed-size minibatches, optionally shuffled.

Unshuffled, a batch inside one chunk is a view of it (no copy); only a batch straddling
two chunks is concatenated. Shuffled, chunks go into a buffer of about ``buffer_rows``
rows: once it is full, it is permuted, the rows past the first ``buffer_rows // 2`` are
emitted as batches and the rest stay to mix with the next chunks. The permutations come
from the ``rng`` the caller seeds, so the order never depends on timing.
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
    """Batches drawn from a bounded shuffle buffer of about ``buffer_rows`` rows."""
    keep_rows = max(buffer_rows, batch_size) // 2
    pending: list[Chunk] = []
    pending_rows = 0
    for chunk in chunks:
        pending.append(chunk)
        pending_rows += len(chunk[0])
        if pending_rows < max(buffer_rows, batch_size) + batch_size:
            continue
        features, labels = _concat(pending)
        order = rng.permutation(pending_rows)
        emit = (pending_rows - keep_rows) // batch_size * batch_size
        yield from _gather_batches(features, labels, order[:emit], batch_size)
        kept = np.sort(order[emit:])  # sorted, so the kept rows are copied sequentially
        pending, pending_rows = [(features[kept], _take(labels, kept))], len(kept)
    if pending_rows:
        features, labels = _concat(pending)
        order = rng.permutation(pending_rows)
        if drop_last:
            order = order[: pending_rows // batch_size * batch_size]
        yield from _gather_batches(features, labels, order, batch_size)


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
