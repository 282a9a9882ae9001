"""DataIterator reading a published dataset directly from the local HDFS (WebHDFS range reads)."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.errors import DatasetNotFoundError
from h3spark.feed import DataIterator
from h3spark.storage import WebHDFSFileSystem, describe_splits, join_uri, publishing, write_manifest

WIDTH = 8


def parquet_bytes(ids: np.ndarray, encoding: str) -> bytes:
    values = (ids[:, None] + 0.5 * np.arange(WIDTH)[None, :]).astype("<f4")
    if encoding == "binary":
        features = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * WIDTH), len(ids), [None, pa.py_buffer(values.tobytes())])
    else:
        offsets = pa.array(np.arange(0, values.size + 1, WIDTH, dtype=np.int32))
        features = pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)))
    sink = io.BytesIO()
    pq.write_table(pa.table({"features": features, "label": pa.array(ids.astype(np.int64))}), sink, row_group_size=50)
    return sink.getvalue()


@pytest.fixture(scope="module")
def hdfs_datasets(hdfs_service):
    fs = WebHDFSFileSystem(hdfs_service.webhdfs_url)
    base = join_uri(hdfs_service.uri, f"/tmp/h3spark-feed-tests/{uuid.uuid4().hex[:8]}")
    uris = {}
    for encoding in ("list", "binary"):
        uri = join_uri(base, encoding)
        with publishing(uri, fs=fs) as tmp_uri:
            for part, ids in enumerate(np.array_split(np.arange(230), 3)):
                fs.write_bytes(join_uri(tmp_uri, "split=train", f"part-{part}.parquet"), parquet_bytes(ids, encoding))
            write_manifest(tmp_uri, {"rows": 230, "features": "features", "label": "label",
                                     "columns": {"features": {"dtype": "float32", "shape": [WIDTH], "encoding": encoding},
                                                 "label": {"dtype": "int64", "shape": []}},
                                     "splits": describe_splits(tmp_uri, fs)}, fs)
        uris[encoding] = uri
    yield uris, hdfs_service.webhdfs_url
    fs.delete(base)


@pytest.mark.parametrize("encoding", ["list", "binary"])
def test_shards_read_from_hdfs_cover_every_row(hdfs_datasets, encoding):
    uris, webhdfs_url = hdfs_datasets
    seen = []
    for rank in range(3):
        data = DataIterator(uris[encoding], batch_size=16, shuffle=True, seed=2, rank=rank, num_workers=3,
                            webhdfs_url=webhdfs_url, expect={"features": (WIDTH,)})
        assert data.dataset_.split == "train" and len(data) == 5
        batches = list(data)
        assert len(batches) == 5
        for features, labels in batches:
            np.testing.assert_array_equal(features[:, 1], labels + 0.5)
            seen += labels.tolist()
    counts = np.bincount(seen, minlength=230)
    assert counts.min() == 1 and counts.sum() == 231  # ceil(230 / 3) * 3: one row read twice


def test_hdfs_reads_are_deterministic_with_or_without_prefetch(hdfs_datasets):
    uris, webhdfs_url = hdfs_datasets
    remote = [labels.tolist() for _, labels in DataIterator(uris["binary"], batch_size=32, shuffle=True, seed=9,
                                                            webhdfs_url=webhdfs_url)]
    again = [labels.tolist() for _, labels in DataIterator(uris["binary"], batch_size=32, shuffle=True, seed=9,
                                                           webhdfs_url=webhdfs_url, prefetch=0)]
    assert remote == again and sorted(sum(remote, [])) == list(range(230))


def test_missing_dataset_on_hdfs(hdfs_service):
    with pytest.raises(DatasetNotFoundError, match="no dataset at hdfs://"):
        DataIterator(join_uri(hdfs_service.uri, "/tmp/h3spark-feed-tests/absent"), webhdfs_url=hdfs_service.webhdfs_url)
