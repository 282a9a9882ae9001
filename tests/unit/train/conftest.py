"""A tiny published dataset whose labels a test chooses (pyarrow, no Spark)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.storage import describe_splits, publishing, write_manifest


def publish_labels(root, splits: dict[str, list], name: str = "data", statistics: bool = True, row_group_rows: int = 4,
                   label_type: pa.DataType | None = None) -> str:
    """Publish ``split=NAME/`` folders holding the given labels (4 features per row; a None label is null)."""
    uri = f"file://{root}/{name}"
    with publishing(uri) as tmp_uri:
        for split, labels in splits.items():
            folder = os.path.join(tmp_uri[len("file://"):], f"split={split}")
            os.makedirs(folder)
            values = np.repeat(np.asarray(labels, np.float32)[:, None], 4, axis=1)  # a null label: NaN features
            offsets = pa.array(np.arange(0, values.size + 1, 4, dtype=np.int32))
            table = pa.table({"features": pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1))),
                              "label": pa.array(labels, label_type)})
            pq.write_table(table, os.path.join(folder, "part-00000.parquet"), row_group_size=row_group_rows,
                           write_statistics=statistics)
        write_manifest(tmp_uri, {"rows": sum(len(labels) for labels in splits.values()), "features": "features",
                                 "label": "label", "splits": describe_splits(tmp_uri)})
    return uri


@pytest.fixture
def labelled(tmp_path):
    """``labelled({"train": [0, 1, 2], "test": [0, 1]}, statistics=True)`` -> the dataset's URI."""
    return lambda splits, **options: publish_labels(tmp_path, splits, **options)
