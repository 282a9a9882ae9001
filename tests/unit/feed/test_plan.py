"""Sharding: disjoint, covering, equal lengths; pure functions, no files."""

import itertools
import math

import numpy as np
import pytest

from h3spark.errors import DataError
from h3spark.feed._plan import RowGroup, epoch_order, rows_per_shard, shard_segments


def groups_of(sizes):
    return [RowGroup(file=i, index=0, rows=size) for i, size in enumerate(sizes)]


def positions(segments, starts):
    out = []
    for segment in segments:
        base = starts[segment.group.file]
        out += range(base + segment.start, base + segment.stop)
    return out


@pytest.mark.parametrize("sizes", [[1], [7], [3, 0, 5], [10, 10, 10], [1, 1], [2, 9, 4, 1]])
@pytest.mark.parametrize("num_workers", [1, 2, 3, 5, 8, 16])
@pytest.mark.parametrize("remainder", ["pad", "drop"])
def test_shards_are_equal_disjoint_and_cover_every_row(sizes, num_workers, remainder):
    groups = groups_of(sizes)
    total = sum(sizes)
    starts = np.cumsum([0] + sizes)
    per_shard = rows_per_shard(total, num_workers, remainder)
    if per_shard == 0:  # drop with fewer rows than shards: DataIterator refuses it
        assert remainder == "drop" and total < num_workers
        return
    shards = [positions(shard_segments(groups, rank, num_workers, remainder), starts) for rank in range(num_workers)]
    assert all(len(shard) == per_shard for shard in shards)
    counts = np.bincount(list(itertools.chain(*shards)), minlength=total)
    if remainder == "pad":
        padding = per_shard * num_workers - total
        assert counts.min() >= 1 and counts.sum() == total + padding
        if padding <= total:  # the first `padding` rows of the epoch's order are read twice
            assert (counts[:padding] == 2).all() and (counts[padding:] == 1).all()
    else:
        assert counts.max() == 1 and counts.sum() == total - total % num_workers
        assert counts[total - total % num_workers:].sum() == 0


def test_segments_read_only_overlapping_row_groups():
    groups = groups_of([10, 10, 10, 10])
    segments = shard_segments(groups, rank=1, num_workers=4, remainder="pad")
    assert [(s.group.file, s.start, s.stop) for s in segments] == [(1, 0, 10)]
    segments = shard_segments(groups, rank=1, num_workers=3, remainder="pad")  # rows 14..27
    assert [(s.group.file, s.start, s.stop) for s in segments] == [(1, 4, 10), (2, 0, 8)]


def test_epoch_order_depends_on_seed_and_epoch_only():
    groups = groups_of(range(1, 41))
    assert epoch_order(groups, 3, 0, True) == epoch_order(groups, 3, 0, True)
    assert epoch_order(groups, 3, 0, True) != epoch_order(groups, 3, 1, True)
    assert epoch_order(groups, 3, 0, True) != epoch_order(groups, 4, 0, True)
    assert epoch_order(groups, 3, 5, False) == groups


def test_empty_split_is_a_data_error():
    with pytest.raises(DataError, match="no rows"):
        shard_segments(groups_of([0, 0]), 0, 2, "pad")


def test_rows_per_shard_rounding():
    assert rows_per_shard(10, 3, "pad") == math.ceil(10 / 3) == 4
    assert rows_per_shard(10, 3, "drop") == 3
    assert rows_per_shard(2, 5, "pad") == 1
