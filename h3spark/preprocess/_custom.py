"""The seeded train/validation/test split and the user-defined Python worker."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import ConfigError, DataError
from h3spark.preprocess._base import Preprocessor, Worker, column_of
from h3spark.preprocess._categorical import stable_hash

REJECT_COLUMN = "_reject_reason"


class Split(Preprocessor):
    """Add a ``split`` column from a seeded hash of each row's key columns (default: all columns).

    The hash depends only on the row's values and the seed, so the split is the same
    for any partitioning and any order of the rows.
    """

    kind = "split"

    def inputs(self):
        return list(self.spec.key or [])

    def outputs(self):
        return [self.spec.column]

    def _workers(self):
        return [_SplitWorker(self.spec)]


class _SplitWorker(Worker):
    def __init__(self, spec):
        self.spec = spec
        self.names = list(spec.fractions)
        self.bounds = np.cumsum([spec.fractions[name] for name in self.names])

    def transform(self, block):
        table = block.table
        keys = self.spec.key or [name for name in table.column_names if name != self.spec.column]
        hashes = np.full(table.num_rows, (self.spec.seed * 0x9E3779B97F4A7C15 + 1) % (1 << 64), dtype=np.uint64)
        for name in keys:
            hashes = _combine(hashes, _column_hash(column_of(table, name, block.step)))
        uniform = (hashes >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        slot = np.minimum(np.searchsorted(self.bounds, uniform, side="right"), len(self.names) - 1)
        labels = pa.DictionaryArray.from_arrays(pa.array(slot.astype(np.int32)), pa.array(self.names)).cast(pa.string())
        block.replace(_set(table, self.spec.column, labels))


def _combine(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        mixed = (left ^ right) * np.uint64(0xBF58476D1CE4E5B9)
        return mixed ^ (mixed >> np.uint64(31))


def _column_hash(column: pa.ChunkedArray) -> np.ndarray:
    """One uint64 per row from the column's values (lists hash their bytes element by element)."""
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type):
        array = column.combine_chunks()
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
        values = pc.cast(pc.list_flatten(array), pa.float64()).to_numpy(zero_copy_only=False)
        element = pd.util.hash_array(values, hash_key="h3spark.hashing0")
        rows = np.repeat(np.arange(len(array)), lengths)
        positions = np.arange(len(values)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        weights = pd.util.hash_array(positions.astype(np.int64), hash_key="h3spark.hashing0")
        with np.errstate(over="ignore"):
            mixed = np.zeros(len(array), dtype=np.uint64)
            np.add.at(mixed, rows, element * weights)
        return mixed
    return pd.util.hash_array(column.to_pandas().to_numpy(dtype=object), hash_key="h3spark.hashing0", categorize=False)


def _set(table: pa.Table, name: str, column) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.schema.get_field_index(name), name, column)
    return table.append_column(name, column)


class PythonFunction(Preprocessor):
    """A user worker by import path: ``fn(table: pyarrow.Table, **params) -> pyarrow.Table``.

    It must return one row per input row, in order. To send rows to quarantine, return a
    string column ``_reject_reason`` that is not null on the bad rows.
    """

    kind = "python"

    def inputs(self):
        return list(self.spec.columns)

    def outputs(self):
        return list(self.spec.outputs)

    def _workers(self):
        return [_FunctionWorker(self.spec.function, dict(self.spec.params))]


def import_function(path: str):
    """Import ``package.module:function`` (the way a user worker is named, never pickled)."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError("python step", [f"cannot import module {module_name!r} for function {path!r}: {error}. "
                                          "Is it installed, or on PYTHONPATH on every executor?"]) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError("python step", [f"module {module_name!r} has no function {attribute!r} (from {path!r})."])
    return function


class _FunctionWorker(Worker):
    def __init__(self, path, params):
        self.path, self.params, self.function = path, params, None

    def transform(self, block):
        self.function = self.function or import_function(self.path)
        result = self.function(block.table, **self.params)
        if isinstance(result, pd.DataFrame):
            result = pa.Table.from_pandas(result, preserve_index=False)
        if not isinstance(result, pa.Table):
            raise DataError(f"python step {self.path} returned {type(result).__name__}; it must return a pyarrow.Table.")
        block.replace(result)
        if REJECT_COLUMN in result.column_names:
            reasons = result.column(REJECT_COLUMN).to_numpy(zero_copy_only=False)
            block.reject(pd.notna(reasons), reasons)
            block.replace(block.table.drop_columns([REJECT_COLUMN]))
