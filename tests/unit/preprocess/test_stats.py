"""Exact, mergeable statistics: the same for any partitioning and order."""

import numpy as np
import pyarrow as pa
import pytest

from h3spark.errors import DataError
from h3spark.preprocess._stats import by_frequency, exact_sum, exact_value, finish, median, merge_partials, partial_stats

REQUESTS = [("x", "moments"), ("x", "range"), ("c", "counts")]


def _table(rows=5003, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows) * 10.0 ** rng.integers(-3, 6, rows)
    x[::17] = np.nan
    return pa.table({"x": pa.array(x, from_pandas=True), "c": rng.choice(["b", "a", "c", None], rows)})


def _split(table, sizes):
    starts = np.cumsum([0] + sizes[:-1])
    return [table.slice(int(start), size) for start, size in zip(starts, sizes)]


@pytest.mark.parametrize("sizes", [[5003], [1, 5002], [1000, 2000, 2003], [50] * 100 + [3]])
def test_statistics_do_not_depend_on_partitioning(sizes):
    table = _table()
    whole = merge_partials([partial_stats(table, REQUESTS)])
    parts = merge_partials([partial_stats(block, REQUESTS) for block in reversed(_split(table, sizes))])
    for column, kind in REQUESTS:
        assert finish(parts, column, kind) == finish(whole, column, kind)


def test_exact_sum_is_exact_where_float_sums_are_not():
    values = np.array([1e16, 1.0, -1e16, 1.0])
    assert float(np.sum(values)) != 2.0
    assert float(exact_value(exact_sum(values))) == 2.0


def test_moments_match_numpy_and_count_nulls():
    table = _table()
    x = table.column("x").to_numpy(zero_copy_only=False)
    moments = finish(merge_partials([partial_stats(table, REQUESTS)]), "x", "moments")
    present = x[~np.isnan(x)]
    assert moments["count"] == len(present) and moments["nulls"] == len(x) - len(present)
    assert moments["mean"] == pytest.approx(present.mean(), rel=1e-12)
    assert moments["var"] == pytest.approx(present.var(), rel=1e-9)


def test_vocabulary_order_is_deterministic():
    counts = {"b": 3, "a": 3, "c": 5}
    assert by_frequency(counts) == ["c", "a", "b"]
    assert by_frequency(dict(reversed(list(counts.items())))) == ["c", "a", "b"]


def test_median_of_counts_matches_numpy():
    values = np.array([5.0, 1.0, 1.0, 3.0, 8.0, 2.0])
    counts = finish(merge_partials([partial_stats(pa.table({"v": values}), [("v", "counts")])]), "v", "counts")
    assert median(counts) == np.median(values)
    assert median({}) is None


def test_moments_of_strings_is_a_clear_error():
    with pytest.raises(DataError, match="column 'c' needs numbers .* Add a cast step"):
        partial_stats(pa.table({"c": ["a"]}), [("c", "moments")])


def test_missing_column_is_named():
    with pytest.raises(DataError, match="column 'nope' is not in the data"):
        partial_stats(pa.table({"c": ["a"]}), [("nope", "counts")])
