"""MXNet for every test here, and a small separable classification dataset published per the
dataset contract (pyarrow, no Spark)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.storage import describe_splits, publishing, write_manifest
from tests.conftest import require


@pytest.fixture(autouse=True)
def _mxnet():
    """These tests train with MXNet or launch ps-lite roles: skip outside CI, fail under CI, without it."""
    require(importlib.util.find_spec("mxnet") is not None, "mxnet is not installed (pip install 'h3spark[mxnet]')")


def publish_blobs(root, rows: int = 2048, width: int = 16, classes: int = 4, seed: int = 0) -> str:
    """Gaussian blobs in ``split=train`` and ``split=test``, as list<float> features."""
    uri = f"file://{root}/blobs"
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, width)).astype(np.float32)
    with publishing(uri) as tmp_uri:
        for split, count in (("train", rows), ("test", rows // 4)):
            labels = rng.integers(0, classes, count)
            features = centers[labels] + rng.normal(0, 1, (count, width)).astype(np.float32)
            folder = f"{tmp_uri[len('file://'):]}/split={split}"
            os.makedirs(folder)
            offsets = pa.array(np.arange(0, count * width + 1, width, dtype=np.int32))
            table = pa.table({"features": pa.ListArray.from_arrays(offsets, pa.array(features.reshape(-1))),
                              "label": pa.array(labels.astype(np.int64))})
            pq.write_table(table, f"{folder}/part-00000.parquet", row_group_size=256)
        write_manifest(tmp_uri, {"rows": rows, "features": "features", "label": "label", "splits": describe_splits(tmp_uri),
                                 "columns": {"features": {"dtype": "float32", "shape": [width], "encoding": "list"},
                                             "label": {"dtype": "int64", "shape": []}}})
    return uri


@pytest.fixture
def blobs(tmp_path) -> str:
    return publish_blobs(tmp_path)
