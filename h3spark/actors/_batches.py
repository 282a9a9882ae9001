"""Minibatches from tables pushed one message at a time, cut by the feed's StreamBatcher.

    >>> batches = OnlineBatches(batch_size=32, feature_shape=(64,))
    >>> batches.push(table)                   # features + label, any number of rows
    >>> for batch in batches.ready():         # every full minibatch the rows pushed make
    ...     model.train_step(batch.features, batch.labels)
    >>> list(batches.ready(final=True))       # and the rows left over, as one smaller batch

The StreamBatcher pulls tables from a queue; it is asked for a batch only when the queue holds
the rows for it, so it never waits for a table that has not arrived.
"""

from __future__ import annotations

import collections
from typing import Iterator

import pyarrow as pa

from h3spark.feed import Batch, StreamBatcher


class OnlineBatches:
    """Tables in (``features`` and ``label`` columns), fixed-size minibatches out, in arrival order."""

    def __init__(self, batch_size: int, feature_shape: tuple[int, ...]):
        self.batch_size, self.feature_shape = batch_size, tuple(feature_shape)
        self._queue: collections.deque[pa.Table] = collections.deque()
        self._rows = 0
        self._closing = False
        self._batches = self._new_batcher()

    @property
    def rows(self) -> int:
        """Rows pushed and not yet handed out in a batch."""
        return self._rows

    def _new_batcher(self) -> Iterator[Batch]:
        return iter(StreamBatcher(self._tables(), self.batch_size, self.feature_shape))

    def _tables(self) -> Iterator[pa.Table]:
        while self._queue or not self._closing:
            if not self._queue:
                raise RuntimeError("OnlineBatches: the batcher asked for rows that were not pushed")
            yield self._queue.popleft()

    def push(self, table: pa.Table) -> None:
        if table.num_rows:
            self._queue.append(table)
            self._rows += table.num_rows

    def ready(self, final: bool = False) -> Iterator[Batch]:
        """The full minibatches the rows make; with ``final``, then the rest as one smaller batch."""
        while self._rows >= self.batch_size:
            batch = next(self._batches)
            self._rows -= len(batch.features)
            yield batch
        if final and self._rows:
            self._closing = True
            try:
                for batch in self._batches:
                    self._rows -= len(batch.features)
                    yield batch
            finally:
                self._closing = False
                self._batches = self._new_batcher()
