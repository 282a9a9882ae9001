"""Which rows each shard reads in each epoch: pure functions of the manifest and (seed, epoch, shard).

The rows of a split form one global list: its files in manifest order, each file's row
groups in order. An epoch permutes the row groups (when shuffling) with a generator seeded
by (seed, epoch) only, so every rank computes the same global order. Shard ``rank`` of
``num_workers`` then takes one contiguous range of ``rows_per_shard`` positions of that
order, so each shard reads only the row groups that overlap its range:

- ``remainder="pad"`` (default): ``rows_per_shard = ceil(rows / num_workers)``; positions
  past the end wrap to the start, so the first ``rows_per_shard * num_workers - rows``
  rows of the epoch's order are read twice (by the last shards) and every row at least once.
- ``remainder="drop"``: ``rows_per_shard = rows // num_workers``; the last
  ``rows % num_workers`` rows of the epoch's order are skipped that epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from h3spark.errors import DataError

REMAINDERS = ("pad", "drop")


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of the split: ``file`` indexes the manifest's file list."""

    file: int
    index: int
    rows: int


@dataclass(frozen=True)
class Segment:
    """Rows ``[start, stop)`` of one row group, in the order a shard reads them."""

    group: RowGroup
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


def rows_per_shard(total_rows: int, num_workers: int, remainder: str) -> int:
    """How many rows every shard reads per epoch (the same for all shards)."""
    if remainder == "pad":
        return math.ceil(total_rows / num_workers)
    return total_rows // num_workers


def batches_per_epoch(shard_rows: int, batch_size: int, drop_last: bool) -> int:
    return shard_rows // batch_size if drop_last else math.ceil(shard_rows / batch_size)


def epoch_order(groups: list[RowGroup], seed: int, epoch: int, shuffle: bool) -> list[RowGroup]:
    """The global row-group order of one epoch; it depends on (seed, epoch) only."""
    if not shuffle:
        return list(groups)
    permutation = np.random.default_rng([seed, epoch]).permutation(len(groups))
    return [groups[i] for i in permutation]


def shard_segments(order: list[RowGroup], rank: int, num_workers: int, remainder: str) -> list[Segment]:
    """The segments of row groups that shard ``rank`` reads, in order (see the module docstring)."""
    total = sum(group.rows for group in order)
    if total == 0:
        raise DataError("the split has no rows; there is nothing to feed.")
    count = rows_per_shard(total, num_workers, remainder)
    start = rank * count
    ends = np.cumsum([group.rows for group in order])
    segments: list[Segment] = []
    while count > 0:
        position = start % total
        take = min(count, total - position)
        segments += _segments_between(order, ends, position, position + take)
        start, count = start + take, count - take
    return segments


def _segments_between(order: list[RowGroup], ends: np.ndarray, first: int, stop: int) -> list[Segment]:
    """Segments covering global positions [first, stop) of one epoch's order (no wrap)."""
    segments = []
    index = int(np.searchsorted(ends, first, side="right"))
    while first < stop:
        group_start = int(ends[index]) - order[index].rows
        end = min(stop, int(ends[index]))
        if end > first:  # row groups with no rows give no segment
            segments.append(Segment(order[index], first - group_start, end - group_start))
        first, index = end, index + 1
    return segments
