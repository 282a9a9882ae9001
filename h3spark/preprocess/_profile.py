"""Column statistics for expectations: mergeable partials, exact under any partitioning.

They are statistics kinds of :mod:`h3spark.preprocess._stats` (computed in the fit's pass);
a kind may carry a parameter, ``"bounds:" + encoded([0, 120])`` (see :func:`kind_with`):

- ``nulls``: rows and missing values (null, and NaN in a float column);
- ``bounds:[lo, hi]``: min and max (infinities included) and the values below lo, above hi;
- ``allowed:[values]``: values not in the set, with the smallest few of them and their counts;
- ``keys``: uniqueness; numbers, booleans and times by their exact 64-bit pattern, other
  values by a 64-bit hash (a false duplicate has odds of about n^2 / 2^65);
- ``sketch``: a histogram of numbers on a fixed grid of 128 buckets per power of two
  (relative width under 0.8 %), the same grid on every dataset, so two sketches compare
  bucket by bucket (see ``_drift``).
"""

from __future__ import annotations

import base64
import json
import math
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EXAMPLES = 5  # the smallest values kept as examples of a violation (exact counts after any merge)
_ABS_BITS = 0x7FFF_FFFF_FFFF_FFFF
_DROPPED_BITS = 45  # of float64's 52 mantissa bits, 7 are kept: 128 buckets per power of two


def kind_with(kind: str, param) -> str:
    """A parameterised kind: ``kind:`` + URL-safe base64 of the parameter's JSON (no '|', no ':')."""
    return f"{kind}:{base64.urlsafe_b64encode(json.dumps(param).encode()).decode()}"


def _param(text: str):
    return json.loads(base64.urlsafe_b64decode(text.encode())) if text else None


def partial(name: str, column: pa.ChunkedArray, kind: str):
    base, _, text = kind.partition(":")
    return PARTIALS[base](column, _param(text))


def encode_float(value: float | None):
    """A float for JSON without NaN or infinity (the pipeline's JSON refuses them)."""
    if value is None or math.isfinite(value):
        return value
    return "inf" if value > 0 else "-inf"


def decode_float(value) -> float | None:
    return float(value) if isinstance(value, str) else value


def _array(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(array.type):  # pyarrow's reader keeps Parquet's dictionary encoding
        array = array.dictionary_decode()
    return array


def _present(column: pa.ChunkedArray) -> pa.Array:
    """The values that are there: nulls dropped, and NaN in a float column."""
    array = _array(column)
    if pa.types.is_floating(array.type):
        array = pc.if_else(pc.is_nan(array), None, array)
    return array.drop_null()


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """float64 values with NaN where a value is missing (unfiltered: each check is one numpy pass)."""
    array = _array(column)
    if array.type != pa.float64():
        array = pc.cast(array, pa.float64())
    return array.to_numpy(zero_copy_only=False)


def _nulls(column, _param) -> dict:
    if pa.types.is_floating(column.type):
        return {"rows": len(column), "missing": int(np.count_nonzero(np.isnan(_numbers(column))))}
    return {"rows": len(column), "missing": column.null_count}


def _bounds(column, bounds) -> dict:
    values, (low, high) = _numbers(column), bounds
    checked = int(len(values) - np.count_nonzero(np.isnan(values)))
    return {"checked": checked,  # fmin/fmax skip NaN; a comparison with NaN is false
            "min": encode_float(float(np.fmin.reduce(values))) if checked else None,
            "max": encode_float(float(np.fmax.reduce(values))) if checked else None,
            "below": int(np.count_nonzero(values < low)) if low is not None else 0,
            "above": int(np.count_nonzero(values > high)) if high is not None else 0}


def _merge_bounds(left: dict, right: dict) -> dict:
    lows = [decode_float(v) for v in (left["min"], right["min"]) if v is not None]
    highs = [decode_float(v) for v in (left["max"], right["max"]) if v is not None]
    return {"checked": left["checked"] + right["checked"],
            "min": encode_float(min(lows)) if lows else None, "max": encode_float(max(highs)) if highs else None,
            "below": left["below"] + right["below"], "above": left["above"] + right["above"]}


def _allowed(column, allowed: list) -> dict:
    values = _present(column) if pa.types.is_floating(column.type) else _array(column)
    try:
        accepted = pa.array(allowed).cast(values.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):  # no value of the set fits this type
        accepted = pa.array([], values.type)
    outside = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=accepted)))
    bad = int(pc.sum(outside).as_py() or 0)
    counted = pc.value_counts(values.filter(outside)) if bad else None
    examples = [] if counted is None else [
        [_plain(value), int(count)] for value, count in zip(counted.field("values").to_pylist(),
                                                           counted.field("counts").to_pylist())]
    return {"checked": len(values) - values.null_count, "bad": bad, "examples": _smallest(examples)}


def _merge_allowed(left: dict, right: dict) -> dict:
    counts: dict = {}
    for value, count in left["examples"] + right["examples"]:
        counts[_order(value)] = [value, counts.get(_order(value), [value, 0])[1] + count]
    return {"checked": left["checked"] + right["checked"], "bad": left["bad"] + right["bad"],
            "examples": _smallest(list(counts.values()))}


def _smallest(pairs: list) -> list:
    """The EXAMPLES smallest values: a value among them overall is among them in every partial holding
    it, so its merged count is exact."""
    return sorted(pairs, key=lambda pair: _order(pair[0]))[:EXAMPLES]


def _order(value):
    return (type(value).__name__ if isinstance(value, (str, bytes, bool)) else "number", value)


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _keys(column, _param) -> dict:
    values = _present(column)
    kind = value_kind(values.type)
    if kind == "float":
        keys = (pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False) + 0.0).view(np.uint64)  # -0.0 is 0.0
    elif kind == "int":
        keys = pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False).view(np.uint64)
    elif kind == "uint":
        keys = pc.cast(values, pa.uint64()).to_numpy(zero_copy_only=False)
    else:
        import pandas as pd

        keys = pd.util.hash_array(values.to_numpy(zero_copy_only=False).astype(object, copy=False),
                                  hash_key="h3spark.hashing0", categorize=False)
    unique, counts = np.unique(keys, return_counts=True)
    return {"rows": len(keys), "kind": kind, "unique": [_pack(unique)], "repeated": [_pack(unique[counts > 1])]}


def value_kind(arrow_type: pa.DataType) -> str:
    """How ``keys`` keys a type: exactly ('float', 'int', 'uint') or by hash ('hash')."""
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_unsigned_integer(arrow_type):
        return "uint"
    if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type) or pa.types.is_temporal(arrow_type):
        return "int"
    return "hash"


def _merge_keys(left: dict, right: dict) -> dict:
    return {"rows": left["rows"] + right["rows"], "kind": left["kind"], "unique": left["unique"] + right["unique"],
            "repeated": left["repeated"] + right["repeated"]}


def _finish_keys(value: dict) -> dict:
    keys = np.concatenate([_unpack(chunk) for chunk in value["unique"]] or [np.zeros(0, np.uint64)])
    distinct, counts = np.unique(keys, return_counts=True)
    within = np.concatenate([_unpack(chunk) for chunk in value["repeated"]] or [np.zeros(0, np.uint64)])
    repeated = np.union1d(distinct[counts > 1], within)
    examples = {"float": np.float64, "int": np.int64, "uint": np.uint64}.get(value["kind"])
    return {"rows": value["rows"], "distinct": int(len(distinct)), "duplicate_rows": value["rows"] - int(len(distinct)),
            "repeated_values": int(len(repeated)), "exact": value["kind"] != "hash",
            "examples": [] if examples is None else [v.item() for v in np.sort(repeated.view(examples))[:EXAMPLES]]}


def _pack(keys: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(keys, dtype=np.uint64).tobytes()).decode()


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint64)


def bucket_indices(values: np.ndarray) -> np.ndarray:
    """Each number's sketch bucket: its float64 bits' exponent and top 7 mantissa bits, plus one, negated for a
    negative number; 0 for zero. Infinity is the largest bucket (its exponent is all ones)."""
    magnitude = np.ascontiguousarray(values, dtype=np.float64).view(np.int64) & _ABS_BITS
    return np.where(magnitude == 0, 0, (magnitude >> _DROPPED_BITS) + 1) * np.where(values < 0, -1, 1)


def bucket_bounds(index: int) -> tuple[float, float]:
    """The [low, high) of the magnitudes in a sketch bucket (negated and swapped for a negative index)."""
    if index == 0:
        return 0.0, 0.0
    low, high = (struct.unpack("<d", struct.pack("<q", bits << _DROPPED_BITS))[0] for bits in (abs(index) - 1,
                                                                                                 abs(index)))
    high = math.inf if math.isinf(low) else high
    return (low, high) if index > 0 else (-high, -low)


def _sketch(column, _param) -> list:
    values = _numbers(column)
    index, counts = np.unique(bucket_indices(values[~np.isnan(values)]), return_counts=True)
    return [[int(i), int(c)] for i, c in zip(index, counts)]


def _merge_pairs(left: list, right: list) -> list:
    totals: dict = {}
    for key, count in left + right:
        totals[key] = totals.get(key, 0) + count
    return sorted([key, count] for key, count in totals.items())


def _add(left: dict, right: dict) -> dict:
    return {key: left[key] + right[key] for key in left}


PARTIALS = {"nulls": _nulls, "bounds": _bounds, "allowed": _allowed, "keys": _keys, "sketch": _sketch}
MERGES = {"nulls": _add, "bounds": _merge_bounds, "allowed": _merge_allowed, "keys": _merge_keys,
          "sketch": _merge_pairs}
FINISHES = {"nulls": dict, "bounds": dict, "allowed": dict, "keys": _finish_keys, "sketch": list}
