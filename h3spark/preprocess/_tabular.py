"""Numeric steps: cast/parse, impute, standard and min-max scaling, bucketize."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import DataError
from h3spark.preprocess._base import FLOAT32_MAX, ColumnWorker, Preprocessor, floats, is_numeric
from h3spark.preprocess._block import Block
from h3spark.preprocess._stats import finish, median, most_frequent

_ARROW_TYPES = {"float32": pa.float32(), "float64": pa.float64(), "int32": pa.int32(), "int64": pa.int64(),
                "string": pa.string(), "bool": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC")}
# a parsed number outside these bounds does not fit the target type: its row goes to quarantine
_BOUNDS = {"float32": (-FLOAT32_MAX, FLOAT32_MAX),
           "int32": (-2.0 ** 31, 2.0 ** 31 - 1), "int64": (-2.0 ** 63, 2.0 ** 63 - 1024)}  # the largest float64 < 2**63
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class Cast(Preprocessor):
    """Cast or parse columns, e.g. ``Cast({"age": "float32"})``; unparsable values quarantine their row."""

    kind = "cast"

    def inputs(self):
        return list(self.spec.columns)

    def _workers(self):
        targets = dict(self.spec.columns)
        return [ColumnWorker(list(targets), lambda name, column, block: _cast(name, column, targets[name], block))]


def _cast(name: str, column: pa.ChunkedArray, target: str, block: Block) -> pa.Array:
    if target == "string":
        return pc.cast(column, pa.string())
    values = column.to_pandas()
    if target == "bool":
        parsed = _parse_bool(values)
    elif target == "timestamp":
        parsed = pd.to_datetime(values, errors="coerce", utc=True)
    else:
        parsed = pd.to_numeric(values.replace("", None) if values.dtype == object else values, errors="coerce")
        if target.startswith("int"):
            parsed = parsed.where(parsed.isna() | (parsed == np.round(parsed)), np.inf)
    bad = parsed.isna().to_numpy() & values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
    if target.startswith("int"):
        bad |= np.isinf(parsed.to_numpy(dtype=np.float64, na_value=np.nan))
    reasons = np.empty(len(values), dtype=object)
    reasons[bad] = [f"cannot parse {value!r} in column {name!r} as {target}" for value in values[bad]]
    outside = _outside(parsed, target) & ~bad
    reasons[outside] = [f"{value!r} in column {name!r} is out of range for {target}" for value in values[outside]]
    block.reject(bad | outside, reasons)
    bad |= outside
    keep = ~bad
    kept = parsed[keep] if len(parsed) else parsed
    return pa.array(kept, type=_ARROW_TYPES[target], from_pandas=True)


def _outside(parsed: pd.Series, target: str) -> np.ndarray:
    """True where a finite parsed number does not fit ``target`` (float32 would make it inf, an int would fail)."""
    if target not in _BOUNDS or not len(parsed):
        return np.zeros(len(parsed), dtype=bool)
    low, high = _BOUNDS[target]
    numbers = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.isfinite(numbers) & ((numbers < low) | (numbers > high))


def _parse_bool(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    return text.map({**{word: True for word in _TRUE}, **{word: False for word in _FALSE}})


class Impute(Preprocessor):
    """Fill missing values: ``Impute(["age"], strategy="median")`` (mean, median, most_frequent, constant)."""

    kind = "impute"

    def statistics(self):
        spec = self.spec
        kind = {"mean": "moments", "median": "counts", "most_frequent": "counts"}.get(spec.strategy)
        return [(column, kind) for column in spec.columns] if kind else []

    def _fit(self, merged):
        spec, fills = self.spec, {}
        for column in spec.columns:
            if spec.strategy == "mean":
                fills[column] = finish(merged, column, "moments")["mean"]
            elif spec.strategy == "median":
                fills[column] = median(_numbers(finish(merged, column, "counts"), column, self.name))
            else:
                fills[column] = most_frequent(finish(merged, column, "counts"))
            if fills[column] is None:
                raise DataError(f"{self.name}: column {column!r} has no values at all, so there is nothing to impute "
                                "from. Use strategy: constant, or drop the column.")
        return {"fill": fills}

    def _workers(self):
        spec = self.spec
        fills = self.state_.get("fill") or {column: spec.fill_value for column in spec.columns}
        return [ColumnWorker(list(spec.columns), lambda name, column, block: _fill(name, column, fills[name], block))]


def _numbers(counts: dict, column: str, step: str) -> dict:
    if any(isinstance(value, str) for value in counts):
        raise DataError(f"step {step} needs numbers in column {column!r} for the median; it holds strings. "
                        "Add a cast step, or use strategy: most_frequent.")
    return counts


def _fill(name: str, column: pa.ChunkedArray, fill, block: Block) -> pa.Array:
    if is_numeric(column) and not isinstance(fill, str):
        values = floats(column, name, block.step)
        return pa.array(np.where(np.isnan(values), float(fill), values))
    if isinstance(fill, str) and is_numeric(column):
        raise DataError(f"step {block.step} fills numeric column {name!r} with the string {fill!r}. Use a number.")
    return pc.fill_null(column, pa.scalar(fill, column.type))


class StandardScale(Preprocessor):
    """(x - mean) / std with statistics of the whole dataset (std 0 scales by 1)."""

    kind = "standard_scale"

    def statistics(self):
        return [(column, "moments") for column in self.spec.columns]

    def _fit(self, merged):
        spec, params = self.spec, {}
        for column in spec.columns:
            moments = finish(merged, column, "moments")
            std = float(np.sqrt(moments["var"])) if moments["var"] else 0.0
            params[column] = [moments["mean"] if spec.with_mean else 0.0, (std or 1.0) if spec.with_std else 1.0]
        return {"mean_std": params}

    def _workers(self):
        params = self.state_["mean_std"]
        return [ColumnWorker(list(params), lambda name, column, block: pa.array(
            (floats(column, name, block.step) - params[name][0]) / params[name][1]))]


class MinMaxScale(Preprocessor):
    """Map [min, max] of each column onto feature_range (a constant column maps to the low end)."""

    kind = "min_max_scale"

    def statistics(self):
        return [(column, "range") for column in self.spec.columns]

    def _fit(self, merged):
        return {"min_max": {column: list(finish(merged, column, "range")) for column in self.spec.columns}}

    def _workers(self):
        low, high = self.spec.feature_range
        ranges = self.state_["min_max"]

        def scale(name, column, block):
            lo, hi = ranges[name]
            width = (hi - lo) or 1.0
            return pa.array((floats(column, name, block.step) - lo) / width * (high - low) + low)

        return [ColumnWorker(list(ranges), scale)]


class Bucketize(Preprocessor):
    """Numbers to int64 bucket indices (0..len(boundaries)); nulls stay null."""

    kind = "bucketize"

    def statistics(self):
        spec = self.spec
        return [(column, "range") for column in spec.columns] if spec.boundaries is None else []

    def _fit(self, merged):
        spec, bounds = self.spec, {}
        for column in spec.columns:
            low, high = finish(merged, column, "range")
            if low is None:
                raise DataError(f"{self.name}: column {column!r} has no values to take buckets from.")
            bounds[column] = np.linspace(low, high, spec.num_buckets + 1)[1:-1].tolist()
        return {"boundaries": bounds}

    def _workers(self):
        spec = self.spec
        bounds = self.state_.get("boundaries") or {column: list(spec.boundaries) for column in spec.columns}

        def bucket(name, column, block):
            values = floats(column, name, block.step)
            index = np.searchsorted(np.asarray(bounds[name], dtype=np.float64), values, side="right")
            return pa.array(index.astype(np.int64), mask=np.isnan(values))

        return [ColumnWorker(list(bounds), bucket)]
