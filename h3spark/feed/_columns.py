"""Tensor columns: what a column holds (dtype, shape, encoding) and how it becomes numpy.

A tensor column is stored either as an Arrow ``list<float32>`` (what Spark writes) or as
``fixed_size_binary(itemsize * prod(shape))`` of little-endian values (encoding
"binary", about 3x faster to read because ``np.frombuffer`` views it without decoding).
Scalars (labels) are plain numeric columns with shape ``()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from h3spark.errors import DataError

ENCODINGS = ("list", "binary", "scalar")


@dataclass(frozen=True)
class ColumnSpec:
    """One column as the feeder sees it: ``shape`` excludes the row dimension."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    encoding: str

    @property
    def width(self) -> int:
        return math.prod(self.shape)


def spec_from_manifest(name: str, entry: Mapping[str, Any], where: str) -> ColumnSpec:
    """A ColumnSpec from a manifest's ``columns[name]`` entry."""
    try:
        dtype = np.dtype(entry.get("dtype", "float32")).name
        shape = tuple(int(size) for size in entry.get("shape", ()))
    except (TypeError, ValueError) as error:
        raise DataError(f"{where}: column {name!r} has an invalid dtype or shape in the manifest ({error}).") from None
    encoding = entry.get("encoding") or ("scalar" if not shape else "list")
    if encoding not in ENCODINGS:
        raise DataError(f"{where}: column {name!r} has the unknown encoding {encoding!r}; "
                        f"the manifest must say one of {', '.join(ENCODINGS)}.")
    return ColumnSpec(name, dtype, shape, encoding)


def spec_from_arrow(name: str, field_type: pa.DataType, sample: pa.Array | pa.ChunkedArray | None, where: str) -> ColumnSpec:
    """Infer a ColumnSpec from a Parquet/Arrow type (and a sample for a list's width)."""
    if pa.types.is_fixed_size_binary(field_type):
        raise DataError(f"{where}: column {name!r} is fixed_size_binary but the manifest does not give its dtype "
                        f"and shape; add columns.{name}: {{dtype, shape, encoding: binary}} to _manifest.json.")
    if pa.types.is_fixed_size_list(field_type):
        return ColumnSpec(name, _value_dtype(name, field_type.value_type, where), (field_type.list_size,), "list")
    if pa.types.is_list(field_type) or pa.types.is_large_list(field_type):
        return ColumnSpec(name, _value_dtype(name, field_type.value_type, where), (_sample_width(name, sample, where),), "list")
    return ColumnSpec(name, _value_dtype(name, field_type, where), (), "scalar")


def _value_dtype(name: str, value_type: pa.DataType, where: str) -> str:
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type) or pa.types.is_boolean(value_type)):
        raise DataError(f"{where}: column {name!r} holds {value_type}, which is not numeric; the feeder reads "
                        "numeric scalars, list<float> or fixed_size_binary tensor columns.")
    return np.dtype(value_type.to_pandas_dtype()).name


def _sample_width(name: str, sample, where: str) -> int:
    if sample is None or len(sample) == 0:
        raise DataError(f"{where}: cannot infer the width of list column {name!r} from an empty row group; "
                        f"add columns.{name}.shape to the manifest.")
    array = sample.combine_chunks() if isinstance(sample, pa.ChunkedArray) else sample
    return int(array.value_lengths()[0].as_py() or 0)


def check_expected(specs: Mapping[str, ColumnSpec], expect: Mapping[str, Any], where: str) -> None:
    """Raise DataError naming the column and both shapes when the data is not what the model expects."""
    for name, wanted in expect.items():
        if name not in specs:
            raise DataError(f"{where}: the model expects a column {name!r}, but the dataset feeds {sorted(specs)}.")
        shape = tuple(int(size) for size in (wanted if isinstance(wanted, (tuple, list)) else (wanted,)))
        if specs[name].shape != shape:
            raise DataError(f"{where}: column {name!r} has shape {specs[name].shape} per row, but the model expects "
                            f"{shape}. Preprocess the data to that shape or change the model's input.")


def to_numpy(column: pa.Array | pa.ChunkedArray, spec: ColumnSpec, where: str = "") -> np.ndarray:
    """Turn one column of a row group or record batch into an array of shape (rows, *spec.shape).

    Zero-copy where Arrow allows (binary, and list values without nulls); the result may
    then be read-only, so copy it before modifying in place.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        raise DataError(f"{where}column {spec.name!r} has {array.null_count} null rows; drop or impute them first.")
    if spec.encoding == "binary":
        return _binary_to_numpy(array, spec, where)
    if spec.encoding == "list":
        return _list_to_numpy(array, spec, where)
    return np.asarray(array.to_numpy(zero_copy_only=False)).astype(spec.dtype, copy=False)


def _binary_to_numpy(array: pa.Array, spec: ColumnSpec, where: str) -> np.ndarray:
    dtype = np.dtype(spec.dtype).newbyteorder("<")
    if not pa.types.is_fixed_size_binary(array.type) or array.type.byte_width != spec.width * dtype.itemsize:
        raise DataError(f"{where}column {spec.name!r} is {array.type}, but its manifest entry ({spec.dtype}, shape "
                        f"{spec.shape}, binary) needs fixed_size_binary({spec.width * dtype.itemsize}).")
    data = array.buffers()[1]
    start = array.offset * array.type.byte_width
    flat = np.frombuffer(data, dtype=dtype, count=len(array) * spec.width, offset=start)
    return flat.reshape((len(array),) + spec.shape).astype(spec.dtype, copy=False)


def _list_to_numpy(array: pa.Array, spec: ColumnSpec, where: str) -> np.ndarray:
    if pa.types.is_fixed_size_list(array.type):
        values = array.flatten()
        width_ok = array.type.list_size == spec.width
    elif pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        offsets = array.offsets.to_numpy()
        width_ok = bool(np.all(np.diff(offsets) == spec.width)) if len(array) else True
        values = array.values.slice(offsets[0], offsets[-1] - offsets[0]) if len(array) else array.values.slice(0, 0)
    else:
        raise DataError(f"{where}column {spec.name!r} is {array.type}, but its manifest says it is a list column.")
    if not width_ok:
        raise DataError(f"{where}column {spec.name!r} has rows of different lengths (not all {spec.width} values, shape "
                        f"{spec.shape}); every row of a tensor column needs the same length.")
    if values.null_count:
        raise DataError(f"{where}column {spec.name!r} has {values.null_count} null values inside its lists; impute them first.")
    flat = values.to_numpy(zero_copy_only=False)
    return flat.reshape((len(array),) + spec.shape).astype(spec.dtype, copy=False)


def table_to_arrays(table: pa.Table, features: str = "features", label: str | None = "label") -> tuple[np.ndarray, np.ndarray | None]:
    """(X, y) numpy arrays from a whole Arrow table (list, fixed-size list or scalar columns).

    >>> X, y = table_to_arrays(pa.table({"features": [[1.0, 2.0]], "label": [1]}))
    """
    for name in (features, label):
        if name is not None and name not in table.column_names:
            raise DataError(f"the dataset has no column {name!r}; it has {table.column_names}.")
    if table.num_rows == 0:
        raise DataError("the dataset is empty; there is nothing to train on.")
    column = table.column(features)
    spec = spec_from_arrow(features, column.type, column.slice(0, 1), "table")
    X = to_numpy(column, spec)
    y = None if label is None else to_numpy(table.column(label), spec_from_arrow(label, table.column(label).type, None, "table"))
    return X, y
