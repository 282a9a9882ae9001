"""DataIterator: a published Parquet dataset as sharded, shuffled numpy minibatches."""

from __future__ import annotations

import itertools
import logging
import os
from typing import Any, Iterator, Mapping

import numpy as np

from h3spark.errors import ConfigError, DataError
from h3spark.feed._batching import Batch, rebatch, shuffled_batches
from h3spark.feed._columns import check_expected
from h3spark.feed._dataset import FeedDataset, read_chunks
from h3spark.feed._plan import REMAINDERS, batches_per_epoch, epoch_order, rows_per_shard, shard_segments
from h3spark.feed._prefetch import prefetched
from h3spark.feed._source import BatchSource
from h3spark.storage import FileSystem, resolve_uri

logger = logging.getLogger(__name__)


class DataIterator(BatchSource):
    """Minibatches ``(features, labels)`` of one shard of a published dataset, as numpy arrays.

    >>> from h3spark.feed import DataIterator
    >>> data = DataIterator("hdfs://127.0.0.1:8020/datasets/mnist", batch_size=256, epochs=2,
    ...                     shuffle=True, seed=7, rank=1, num_workers=4, expect={"features": (784,)})
    >>> len(data) == 2 * data.batches_per_epoch
    True
    >>> for features, labels in data:   # float32 (256, 784), int64 (256,)
    ...     ...

    - ``split``: the manifest's split to read; by default "train", else "all".
    - Sharding: every epoch, the split's row groups are put in one global order (permuted by
      (seed, epoch) when ``shuffle``) and shard ``rank`` of ``num_workers`` reads one
      contiguous range of ``rows_per_shard`` rows of it, so shards are disjoint and every
      shard yields ``batches_per_epoch`` batches. ``remainder="pad"`` (default) makes
      ``rows_per_shard = ceil(rows / num_workers)`` and wraps: the first
      ``rows_per_shard * num_workers - rows`` rows of the epoch's order are read a second
      time by the last shards. ``remainder="drop"`` makes it ``rows // num_workers`` and
      skips the last ``rows % num_workers`` rows of the epoch's order.
    - ``shuffle``: the row-group order and a buffer of ``shuffle_buffer`` rows, seeded by
      (seed, epoch, rank, num_workers); the order never depends on thread timing.
    - ``drop_last``: drop each shard's last partial batch.
    - ``prefetch``: batches prepared ahead by one background thread (0: none).
    - ``read_threads``: row groups read and decoded ahead in parallel (pyarrow releases the
      GIL); default: half this process's share of the cores, 1 to 4 (:func:`default_read_threads`).
      The order of the batches does not depend on it.
    - ``cache``: keep this shard's decoded row groups in memory after the first epoch.
    - ``expect``: ``{column: shape}`` the model needs; a mismatch raises DataError.

    Batches inside one row group are read-only views of Arrow memory: copy one before
    modifying it in place.
    """

    def __init__(self, uri: str, split: str | None = None, *, batch_size: int = 256, epochs: int = 1,
                 shuffle: bool = False, seed: int = 0, shuffle_buffer: int = 10_000, drop_last: bool = False,
                 rank: int = 0, num_workers: int = 1, remainder: str = "pad",
                 expect: Mapping[str, Any] | None = None, prefetch: int = 4, read_threads: int | None = None,
                 cache: bool = False,
                 features: str | None = None, label: str | None | bool = None,
                 fs: FileSystem | None = None, webhdfs_url: str | None = None):
        self.uri, self.split = uri, split
        self.batch_size, self.epochs, self.drop_last = batch_size, epochs, drop_last
        self.shuffle, self.seed, self.shuffle_buffer = shuffle, seed, shuffle_buffer
        self.rank, self.num_workers, self.remainder = rank, num_workers, remainder
        self.prefetch, self.cache = prefetch, cache
        self.read_threads = default_read_threads() if read_threads is None else read_threads
        self._validate_params()
        self.dataset_ = FeedDataset(resolve_uri(uri), split, features, label, fs, webhdfs_url)
        check_expected(self.dataset_.specs, self._expected(expect), self.dataset_.where)
        self.row_groups_ = self.dataset_.row_groups()
        self.rows_per_shard_ = self._shard_rows()
        self._cache: dict | None = {} if cache else None
        logger.debug("feeding %s split=%s rows=%d rank=%d num_workers=%d", self.dataset_.uri, self.dataset_.split,
                     self.dataset_.rows, rank, num_workers)

    def _validate_params(self) -> None:
        problems = [_int_problem(name, getattr(self, name), low) for name, low in
                    (("batch_size", 1), ("epochs", 0), ("num_workers", 1), ("shuffle_buffer", 0), ("prefetch", 0),
                     ("seed", 0), ("read_threads", 1))]
        if self.remainder not in REMAINDERS:
            problems.append(f"The 'remainder' parameter of DataIterator must be one of {list(REMAINDERS)}. Got {self.remainder!r} instead.")
        problems = [problem for problem in problems if problem]
        if problems:
            raise ConfigError("DataIterator parameters", problems)
        if not _is_int(self.rank) or not 0 <= self.rank < self.num_workers:
            raise ConfigError("DataIterator parameters", [
                f"The 'rank' parameter of DataIterator must be an int in the range [0, {self.num_workers - 1}] "
                f"(num_workers={self.num_workers}). Got {self.rank!r} instead."])

    def _expected(self, expect: Mapping[str, Any] | None) -> dict[str, Any]:
        """``expect`` may name the columns or use the keys "features" and "label"."""
        names = {"features": self.dataset_.features, "label": self.dataset_.label}
        return {names.get(key) or key: shape for key, shape in (expect or {}).items()}

    def _shard_rows(self) -> int:
        rows = self.dataset_.rows
        shard_rows = rows_per_shard(rows, self.num_workers, self.remainder)
        if shard_rows == 0:
            raise DataError(f"{self.dataset_.uri} split {self.dataset_.split!r} has {rows} rows, fewer than num_workers="
                            f"{self.num_workers}, so remainder='drop' leaves nothing to read. Use remainder='pad'.")
        if batches_per_epoch(shard_rows, self.batch_size, self.drop_last) == 0:
            raise DataError(f"each of {self.num_workers} shards of {self.dataset_.uri} has {shard_rows} rows, fewer than "
                            f"batch_size={self.batch_size}, so drop_last=True leaves no batch. Lower batch_size.")
        return shard_rows

    @property
    def batches_per_epoch(self) -> int:
        return batches_per_epoch(self.rows_per_shard_, self.batch_size, self.drop_last)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return self.dataset_.feature_spec.shape

    @property
    def feature_dtype(self) -> str:
        return self.dataset_.feature_spec.dtype

    @property
    def has_labels(self) -> bool:
        return self.dataset_.label is not None

    def __len__(self) -> int:
        """Batches yielded by ``iter(self)``: ``epochs * batches_per_epoch``, the same on every shard."""
        return self.epochs * self.batches_per_epoch

    def __iter__(self) -> Iterator[Batch]:
        """Every epoch in turn, prefetched across epoch boundaries."""
        return prefetched(lambda: itertools.chain.from_iterable(self._batches(epoch) for epoch in range(self.epochs)),
                          self.prefetch)

    def iter_epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of one epoch (its shuffle depends on ``epoch``)."""
        problem = _int_problem("epoch", epoch, 0)
        if problem:
            raise ConfigError("DataIterator.iter_epoch", [problem])
        return prefetched(lambda: self._batches(epoch), self.prefetch)

    def _batches(self, epoch: int) -> Iterator[Batch]:
        order = epoch_order(self.row_groups_, self.seed, epoch, self.shuffle)
        segments = shard_segments(order, self.rank, self.num_workers, self.remainder)
        chunks = read_chunks(self.dataset_, segments, self._cache, self.read_threads)
        try:
            if self.shuffle and self.shuffle_buffer:
                rng = np.random.default_rng([self.seed, epoch, self.rank, self.num_workers])
                yield from shuffled_batches(chunks, self.batch_size, self.drop_last, self.shuffle_buffer, rng)
            else:
                yield from rebatch(chunks, self.batch_size, self.drop_last)
        finally:
            chunks.close()


def default_read_threads() -> int:
    """Half this process's share of the cores, between 1 and 4: the rest train and batch. The
    share divides by LOCAL_WORLD_SIZE, the training processes on this host (set by the launcher).
    On 2 cores that is 1: there a second reader slowed CPU training (oversubscription)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        processes = 1
    return max(1, min(4, cores // (2 * processes)))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _int_problem(name: str, value: Any, low: int) -> str | None:
    if _is_int(value) and value >= low:
        return None
    return f"The '{name}' parameter of DataIterator must be an int in the range [{low}, inf). Got {value!r} instead."
