"""Distribution drift of a column against a reference: PSI and KS on profiles.

A profile is ``(kind, pairs)``: ``sketch`` pairs are [bucket, count] of numbers on the fixed
grid of ``_profile.bucket_indices``; ``counts`` pairs are [value, count] of categories. Both
sides use the same grid, so the comparison needs no shared binning pass:

- PSI: sum over bins of (q - p) * ln(q / p), p the reference's share and q the data's, each at
  least 1e-4 (an empty bin would make it infinite). Numeric bins are the reference's quantiles
  (``bins`` of them, cut at bucket edges); categories are their own bins.
- KS: the largest gap between the two empirical CDFs, taken at the bucket edges: exact for the
  bucketed values, within the mass of one bucket (0.8 % wide) of the exact statistic.
"""

from __future__ import annotations

import math

import numpy as np

from h3spark.preprocess._profile import bucket_bounds

PSI_FLOOR = 1e-4


def psi(kind: str, reference: list, current: list, bins: int) -> tuple[float, dict]:
    """The PSI of ``current`` against ``reference`` and the bins it used (for the report)."""
    if kind == "counts":
        names = sorted({_key(value) for value, _ in reference + current})
        ref, cur = _shares(reference, names), _shares(current, names)
        table = [{"bin": str(name[1]), "reference": p, "data": q} for name, p, q in zip(names, ref, cur)]
    else:
        edges = quantile_edges(reference, bins)
        ref, cur = _binned(reference, edges), _binned(current, edges)
        table = [{"bin": _bin_name(edges, i), "reference": p, "data": q} for i, (p, q) in enumerate(zip(ref, cur))]
    p, q = np.maximum(ref, PSI_FLOOR), np.maximum(cur, PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p))), {"bins": table}


def ks(reference: list, current: list) -> tuple[float, dict]:
    """The KS statistic of two sketches and where the CDFs differ most."""
    buckets = np.union1d([b for b, _ in reference], [b for b, _ in current]).astype(np.int64)
    gaps = np.abs(_cdf(reference, buckets) - _cdf(current, buckets))
    at = int(np.argmax(gaps)) if len(gaps) else 0
    return float(gaps[at]) if len(gaps) else 0.0, {"at_value": bucket_bounds(int(buckets[at]))[1] if len(gaps) else None}


def quantile_edges(sketch: list, bins: int) -> np.ndarray:
    """Bucket indices that cut the reference into ``bins`` parts of about equal mass (fewer where one
    bucket holds more than a part); a value's bin is the number of edges below its bucket."""
    buckets = np.array([b for b, _ in sketch], dtype=np.int64)
    cumulative = np.cumsum([c for _, c in sketch], dtype=np.float64)
    if not len(buckets):
        return buckets
    cuts = np.searchsorted(cumulative / cumulative[-1], np.arange(1, bins) / bins, side="left")
    return np.unique(buckets[np.minimum(cuts, len(buckets) - 1)])


def quantile(sketch: list, fraction: float) -> float | None:
    """The value at ``fraction`` of a sketch (its bucket's midpoint)."""
    if not sketch:
        return None
    cumulative = np.cumsum([c for _, c in sketch], dtype=np.float64)
    index = int(np.searchsorted(cumulative / cumulative[-1], fraction, side="left"))
    low, high = bucket_bounds(sketch[min(index, len(sketch) - 1)][0])
    return low if math.isinf(low) or low == high else (low + high) / 2


def _binned(sketch: list, edges: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(edges) + 1)
    for bucket, count in sketch:
        counts[int(np.searchsorted(edges, bucket, side="left"))] += count
    return counts / counts.sum() if counts.sum() else counts


def _bin_name(edges: np.ndarray, index: int) -> str:
    low = f"{bucket_bounds(int(edges[index - 1]))[1]:.4g}" if index > 0 else "-inf"
    high = f"{bucket_bounds(int(edges[index]))[1]:.4g}" if index < len(edges) else "inf"
    return f"({low}, {high}]"


def _shares(pairs: list, names: list) -> np.ndarray:
    totals = {_key(value): count for value, count in pairs}
    counts = np.array([totals.get(name, 0) for name in names], dtype=np.float64)
    return counts / counts.sum() if counts.sum() else counts


def _key(value):
    return (type(value).__name__ if isinstance(value, (str, bool)) else "number", value)


def _cdf(sketch: list, buckets: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(buckets))
    counts[np.searchsorted(buckets, [b for b, _ in sketch])] = [c for _, c in sketch]
    total = counts.sum()
    return np.cumsum(counts) / total if total else counts
