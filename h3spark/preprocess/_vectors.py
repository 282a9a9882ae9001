"""Vector steps: image reshape + normalise, and assembling the feature vector.

A feature vector holds finite float32 values only: a row with a missing value, an infinite
one or one beyond float32 (which float32 would make infinite) goes to quarantine.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from h3spark.errors import DataError
from h3spark.preprocess._base import FLOAT32_MAX, ColumnWorker, Preprocessor, Worker, column_of, vectors
from h3spark.preprocess._block import Block
from h3spark.preprocess._stats import finish


def list_matrix(column, width: int | None, name: str, block: Block) -> np.ndarray:
    """A list column as a (rows, width) float64 matrix; rows of another length or with nulls are rejected."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not (pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or pa.types.is_fixed_size_list(array.type)):
        raise DataError(f"step {block.step} needs a list column {name!r}; it is {array.type}.")
    lengths = pc.fill_null(pc.list_value_length(array), -1).to_numpy(zero_copy_only=False)
    width = width if width is not None else int(np.bincount(lengths[lengths >= 0]).argmax()) if (lengths >= 0).any() else 0
    bad = lengths != width
    if bad.any():
        reasons = np.empty(len(lengths), dtype=object)
        reasons[bad] = [f"wrong shape in column {name!r}: {n if n >= 0 else 'no'} values, expected {width}" for n in lengths[bad]]
        block.reject(bad, reasons)
        array = array.filter(pa.array(~bad))
    values = pc.list_flatten(array).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    matrix = values.reshape(len(array), width)
    missing = np.isnan(matrix).any(axis=1)
    if missing.any():
        block.reject(missing, f"missing values inside column {name!r}")
        matrix = matrix[~missing]
    infinite = (np.abs(matrix) > FLOAT32_MAX).any(axis=1)
    if infinite.any():
        block.reject(infinite, f"infinite value (or one beyond float32) inside column {name!r}")
        matrix = matrix[~infinite]
    return matrix


class Image(Preprocessor):
    """Flat pixel lists of ``shape`` to float32 in [0, 1], dividing by max_value (fitted when not given)."""

    kind = "image"

    def statistics(self):
        return [] if self.spec.max_value else [(column, "range") for column in self.spec.columns]

    def _fit(self, merged):
        return {"max_value": {column: finish(merged, column, "range")[1] for column in self.spec.columns}}

    def _workers(self):
        spec = self.spec
        width = math.prod(spec.shape)
        maxima = self.state_.get("max_value") or {column: spec.max_value for column in spec.columns}

        def normalise(name, column, block):
            matrix = list_matrix(column, width, name, block)
            if not maxima[name]:
                raise DataError(f"step {block.step}: column {name!r} has no positive pixel maximum; set max_value.")
            out_of_range = (matrix < 0).any(axis=1) | (matrix > maxima[name]).any(axis=1)
            block.reject(out_of_range, f"pixel outside [0, {maxima[name]:g}] in column {name!r}")
            return vectors(matrix[~out_of_range] / maxima[name])

        return [ColumnWorker(list(spec.columns), normalise)]


class Assemble(Preprocessor):
    """Concatenate numbers and vectors into one float32 vector; a row with a missing value is rejected."""

    kind = "assemble"

    def outputs(self):
        return [self.spec.output]

    def _workers(self):
        return [_AssembleWorker(list(self.spec.columns), self.spec.output)]


class _AssembleWorker(Worker):
    def __init__(self, columns, output):
        self.columns, self.output = columns, output

    def transform(self, block):
        for name in self.columns:  # variable lists first: rows of the wrong length leave the block
            column = column_of(block.table, name, block.step)
            if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
                fixed = vectors(list_matrix(column, None, name, block))
                block.replace(_set(block.table, name, fixed))
        table = block.table
        matrices = [_as_matrix(table.column(name), name, block) for name in self.columns]
        bad = np.zeros(table.num_rows, dtype=bool)
        for matrix in matrices:
            bad |= _not_float32(matrix).any(axis=1)
        if bad.any():
            block.reject(bad, _bad_value_reasons(self.columns, matrices, bad))
            matrices = [matrix[~bad] for matrix in matrices]
        matrices = [matrix.astype(np.float32, copy=False) for matrix in matrices]
        block.replace(_set(block.table, self.output, vectors(np.hstack(matrices) if matrices else np.zeros((0, 0)))))


def _as_matrix(column, name: str, block: Block) -> np.ndarray:
    """float32 for vectors; float64 for numbers (checked against the float32 range before they are narrowed)."""
    if pa.types.is_fixed_size_list(column.type):
        flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        return flat.reshape(len(column), column.type.list_size).astype(np.float32, copy=False)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).reshape(-1, 1)
    raise DataError(f"step {block.step} cannot put column {name!r} ({column.type}) into a vector. Encode it first "
                    "(one_hot, string_index, hash_features or text_hash).")


def _not_float32(matrix: np.ndarray) -> np.ndarray:
    """True where a value is missing, infinite or beyond float32."""
    if matrix.dtype == np.float32:
        return ~np.isfinite(matrix)
    return np.isnan(matrix) | (np.abs(matrix) > FLOAT32_MAX)


def _bad_value_reasons(columns, matrices, bad) -> np.ndarray:
    reasons = np.empty(len(bad), dtype=object)
    for row in np.flatnonzero(bad):
        missing = [repr(name) for name, matrix in zip(columns, matrices) if np.isnan(matrix[row]).any()]
        infinite = [repr(name) for name, matrix in zip(columns, matrices) if (np.abs(matrix[row]) > FLOAT32_MAX).any()]
        reasons[row] = (f"missing value in {', '.join(missing)} (add an impute step)" if missing else
                        f"infinite value (or one beyond float32) in {', '.join(infinite)}")
    return reasons


def _set(table: pa.Table, name: str, column) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.schema.get_field_index(name), name, column)
    return table.append_column(name, column)
