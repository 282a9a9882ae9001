"""Mergeable, exact column statistics: the same on one block as on any partitioning.

A preprocessor asks for statistics by ``(column, kind)``; each Spark partition computes a
*partial* (a JSON-able dict) with :func:`partial_stats`, the driver merges them with
:func:`merge_partials` and reads the result with :func:`finish`. Every merge is exact, so
fitted state never depends on the number of partitions nor on their order:

- ``moments``: count, null count, and exact sums of x and x*x (floats are split into
  integer mantissas per binary exponent and summed as Python integers);
- ``range``: min and max of the finite values (an infinite value would make every other
  value scale to one end);
- ``counts``: value -> count (vocabularies, most frequent value, the median).

The kinds expectations use (nulls, bounds, allowed, keys, sketch; some with a parameter
after ``:``) live in ``_profile``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import DataError
from h3spark.preprocess import _profile

KINDS = ("moments", "range", "counts")
ROWS_KEY = "*|rows"  # input rows behind a partial (merged by addition)
_MANTISSA_BITS = 53
_HALF_BITS = 26


def partial_stats(table: pa.Table, requests: list[tuple[str, str]]) -> dict:
    """Partial statistics of one block, keyed ``"column|kind"``."""
    return {f"{column}|{kind}": _partial(column, kind, table) for column, kind in sorted(set(requests))}


def _partial(column: str, kind: str, table: pa.Table):
    if kind.partition(":")[0] in _profile.PARTIALS:
        return _profile.partial(column, _column(table, column), kind)
    return _PARTIALS[kind](column, _column(table, column))


def merge_partials(partials: list[dict]) -> dict:
    """Merge partials of several blocks (any order gives the same result)."""
    merged: dict = {}
    for partial in partials:
        for key, value in partial.items():
            kind = key.rsplit("|", 1)[1].partition(":")[0]
            merged[key] = _MERGES[kind](merged[key], value) if key in merged else value
    return merged


def finish(merged: dict, column: str, kind: str):
    """The final statistic: moments -> dict(count, nulls, mean, var); range -> (min, max); counts -> {value: n}."""
    value = merged.get(f"{column}|{kind}")
    if value is None:
        raise DataError(f"no statistics were computed for column {column!r} ({kind}); the input had no blocks.")
    return _FINISHES[kind.partition(":")[0]](value)


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise DataError(f"column {name!r} is not in the data; it has {', '.join(table.column_names)}.")
    return table.column(name)


def _as_float(name: str, column: pa.ChunkedArray, kind: str) -> np.ndarray:
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type):
        column = pc.list_flatten(column)  # range of a vector column: over all its elements
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
        raise DataError(f"column {name!r} needs numbers for '{kind}' statistics; it is {column.type}. "
                        f"Add a cast step before it, e.g. {{kind: cast, columns: {{{name}: float32}}}}.")
    values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return values[~np.isnan(values)]


def _moments(name: str, column: pa.ChunkedArray) -> dict:
    values = _as_float(name, column, "moments")
    values = values[np.isfinite(values)]
    return {"count": int(len(values)), "nulls": int(len(column) - len(values)),
            "sum": exact_sum(values), "sumsq": exact_sum(values * values)}


def exact_sum(values: np.ndarray) -> dict[str, int]:
    """The exact sum of float64 values as {binary exponent: integer mantissa sum}."""
    if len(values) == 0:
        return {}
    mantissas, exponents = np.frexp(values)
    integers = (mantissas * float(1 << _MANTISSA_BITS)).astype(np.int64)
    high, low = np.divmod(integers, 1 << _HALF_BITS)  # each < 2**27, so float64 bincount sums stay exact
    base = int(exponents.min())
    slots = exponents - base
    high_sums = np.bincount(slots, weights=high.astype(np.float64))
    low_sums = np.bincount(slots, weights=low.astype(np.float64))
    sums = {}
    for slot in np.flatnonzero((high_sums != 0) | (low_sums != 0)):
        sums[str(base + int(slot))] = (int(high_sums[slot]) << _HALF_BITS) + int(low_sums[slot])
    return sums


def exact_value(sums: dict[str, int]) -> Fraction:
    """The exact rational value of an :func:`exact_sum`."""
    return sum((Fraction(total) * Fraction(2) ** (int(exponent) - _MANTISSA_BITS) for exponent, total in sums.items()),
               Fraction(0))


def _merge_sums(left: dict, right: dict) -> dict:
    merged = dict(left)
    for exponent, total in right.items():
        merged[exponent] = merged.get(exponent, 0) + total
    return merged


def _merge_moments(left: dict, right: dict) -> dict:
    return {"count": left["count"] + right["count"], "nulls": left["nulls"] + right["nulls"],
            "sum": _merge_sums(left["sum"], right["sum"]), "sumsq": _merge_sums(left["sumsq"], right["sumsq"])}


def _finish_moments(value: dict) -> dict:
    count = value["count"]
    if count == 0:
        return {"count": 0, "nulls": value["nulls"], "mean": None, "var": None}
    mean = exact_value(value["sum"]) / count
    var = max(exact_value(value["sumsq"]) / count - mean * mean, Fraction(0))
    return {"count": count, "nulls": value["nulls"], "mean": float(mean), "var": float(var)}


def _range(name: str, column: pa.ChunkedArray) -> dict:
    values = _as_float(name, column, "range")
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"min": None, "max": None}
    return {"min": float(values.min()), "max": float(values.max())}


def _merge_range(left: dict, right: dict) -> dict:
    lows = [v for v in (left["min"], right["min"]) if v is not None]
    highs = [v for v in (left["max"], right["max"]) if v is not None]
    return {"min": min(lows) if lows else None, "max": max(highs) if highs else None}


def _counts(name: str, column: pa.ChunkedArray) -> list:
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), None, column)
    counted = pc.value_counts(column.drop_null().combine_chunks() if len(column) else pa.array([], column.type))
    values = counted.field("values").to_pylist()
    return [[value, int(count)] for value, count in zip(values, counted.field("counts").to_pylist())]


def _merge_counts(left: list, right: list) -> list:
    totals = {_key(value): [value, count] for value, count in left}
    for value, count in right:
        entry = totals.setdefault(_key(value), [value, 0])
        entry[1] += count
    return list(totals.values())


def _key(value):
    return (type(value).__name__ if not isinstance(value, (int, float)) or isinstance(value, bool) else "num", value)


def _finish_counts(value: list) -> dict:
    return {item: count for item, count in value}


_PARTIALS = {"moments": _moments, "range": _range, "counts": _counts}
_MERGES = {"moments": _merge_moments, "range": _merge_range, "counts": _merge_counts, "rows": lambda a, b: a + b,
           **_profile.MERGES}
_FINISHES = {"moments": _finish_moments, "range": lambda value: (value["min"], value["max"]), "counts": _finish_counts,
             **_profile.FINISHES}


def sorted_values(counts: dict) -> list:
    """Values in a deterministic order: by value (numbers before strings)."""
    return sorted(counts, key=lambda value: (isinstance(value, str), value))


def by_frequency(counts: dict) -> list:
    """Values by descending count, ties broken by value: a deterministic vocabulary order."""
    return sorted(counts, key=lambda value: (-counts[value], isinstance(value, str), value))


def most_frequent(counts: dict):
    return by_frequency(counts)[0] if counts else None


def median(counts: dict) -> float | None:
    """The median of the counted numbers (the mean of the two middle values when even)."""
    if not counts:
        return None
    values = np.array(sorted(counts), dtype=np.float64)
    cumulative = np.cumsum([counts[value] for value in sorted(counts)])
    total = int(cumulative[-1])
    lower = values[np.searchsorted(cumulative, (total - 1) // 2, side="right")]
    upper = values[np.searchsorted(cumulative, total // 2, side="right")]
    return float((Fraction(float(lower)) + Fraction(float(upper))) / 2)
