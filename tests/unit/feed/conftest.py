"""Tiny Parquet datasets written with pyarrow and published per the dataset contract.

Row ``i`` of a split has ``label == i`` and ``features == [i, i + 0.5, ...]``, so a test
can tell exactly which rows a batch holds.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.storage import describe_splits, publishing, write_manifest


def feature_values(ids: np.ndarray, width: int) -> np.ndarray:
    return (ids[:, None] + 0.5 * np.arange(width)[None, :]).astype(np.float32)


def tensor_column(values: np.ndarray, encoding: str) -> pa.Array:
    rows, width = values.shape
    if encoding == "binary":
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width * 4), rows, [None, pa.py_buffer(values.astype("<f4").tobytes())])
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.reshape(-1)))


def write_split(tmp_uri: str, folder: str, ids: np.ndarray, files: int, row_groups: int, width: int, encoding: str) -> None:
    for part, file_ids in enumerate(np.array_split(ids, files)):
        table = pa.table({"features": tensor_column(feature_values(file_ids, width), encoding),
                          "label": pa.array(file_ids.astype(np.int64))})
        group_rows = max(1, -(-len(file_ids) // row_groups))
        path = f"{tmp_uri[len('file://'):]}/{folder}part-{part:05d}.parquet"
        pq.write_table(table, path, row_group_size=group_rows)


def make_dataset(root, name="data", rows=100, files=2, row_groups=2, width=4, encoding="list", splits=None,
                 columns=True, label="label") -> str:
    """Publish a dataset; ``splits`` maps split names to row counts (default: one unsplit set)."""
    import os

    uri = f"file://{root}/{name}"
    with publishing(uri) as tmp_uri:
        os.makedirs(tmp_uri[len("file://"):])
        for split, split_rows in (splits or {None: rows}).items():
            folder = f"split={split}/" if split else ""
            os.makedirs(f"{tmp_uri[len('file://'):]}/{folder}", exist_ok=True)
            write_split(tmp_uri, folder, np.arange(split_rows), files, row_groups, width, encoding)
        manifest = {"rows": rows, "features": "features", "label": label, "splits": describe_splits(tmp_uri)}
        if columns:
            manifest["columns"] = {"features": {"dtype": "float32", "shape": [width], "encoding": encoding},
                                   "label": {"dtype": "int64", "shape": []}}
        write_manifest(tmp_uri, manifest)
    return uri




@pytest.fixture
def dataset(tmp_path):
    """A factory: ``dataset(rows=..., files=..., row_groups=..., encoding=...)`` -> URI."""
    counter = iter(range(1_000_000))

    def build(**options):
        return make_dataset(tmp_path, name=f"data{next(counter)}", **options)

    return build


@pytest.fixture
def tensors():
    """The row encoders, for tests that build Arrow data themselves (pytest imports no helpers here)."""
    return SimpleNamespace(feature_values=feature_values, tensor_column=tensor_column)
