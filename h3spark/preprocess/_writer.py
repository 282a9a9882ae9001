"""Task-side Parquet writing: each Spark task writes its own part files with pyarrow.

Files go into the publishing temporary directory, one per split (``split=NAME/``)
and partition, with several row groups each so a feeder can shard by row group.
The feature vector is stored as ``fixed_size_binary`` of little-endian float32.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from h3spark.storage import filesystem_for, join_uri
from h3spark.storage._uri import local_path

_MIN_ROW_GROUP = 64


def encode_binary(column) -> pa.FixedSizeBinaryArray:
    """A fixed-size list<float32> column as fixed_size_binary(4*width) (little-endian float32)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    values = pc.list_flatten(array).to_numpy(zero_copy_only=False).astype("<f4", copy=False)
    data = pa.py_buffer(np.ascontiguousarray(values).tobytes())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * width), len(array), [None, data])


def decode_binary(column, width: int) -> np.ndarray:
    """The inverse of :func:`encode_binary`: a (rows, width) float32 matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    raw = np.frombuffer(array.buffers()[1], dtype="<f4", count=(array.offset + len(array)) * width)
    return raw[array.offset * width:].reshape(len(array), width)


def for_parquet(table: pa.Table, features: str) -> pa.Table:
    """The table as it is stored: the features column binary-encoded."""
    index = table.schema.get_field_index(features)
    return table.set_column(index, features, encode_binary(table.column(features)))


def write_part(table: pa.Table, folder_uri: str, name: str, row_groups: int, storage: dict) -> dict:
    """Write one part file; return its manifest entry (relative path added by the caller)."""
    row_group_size = max(_MIN_ROW_GROUP, math.ceil(table.num_rows / row_groups)) if table.num_rows else 1
    uri = join_uri(folder_uri, name)
    if uri.startswith("file://"):
        os.makedirs(local_path(folder_uri), exist_ok=True)
        pq.write_table(table, local_path(uri), row_group_size=row_group_size, compression="snappy")
    else:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=row_group_size, compression="snappy")
        fs = filesystem_for(uri, storage.get("webhdfs_url"), storage.get("hdfs_user"))
        fs.write_bytes(uri, sink.getvalue().to_pybytes())
    return {"rows": table.num_rows, "row_groups": math.ceil(table.num_rows / row_group_size) if table.num_rows else 0}


def write_splits(table: pa.Table, uri: str, split_column: str | None, part: str, row_groups: int, storage: dict) -> list:
    """Write a partition's rows: one file per split (``split=NAME/part``), or one at the root."""
    if split_column is None:
        return [{"path": part, **write_part(table, uri, part, row_groups, storage)}] if table.num_rows else []
    written = []
    labels = table.column(split_column)
    rest = table.drop_columns([split_column])
    for name in sorted(pc.unique(labels).to_pylist()):
        subset = rest.filter(pc.equal(labels, name))
        folder = f"split={name}"
        written.append({"path": f"{folder}/{part}", **write_part(subset, join_uri(uri, folder), part, row_groups, storage)})
    return written
