"""Preprocessing against the real local HDFS: tasks write Parquet over WebHDFS, publish is atomic."""

import uuid

import pyarrow.parquet as pq
import pytest

from h3spark.config import H3SparkConfig
from h3spark.errors import DatasetExistsError
from h3spark.preprocess import Pipeline, preprocess
from h3spark.preprocess._writer import decode_binary
from h3spark.storage import filesystem_for, is_published, join_uri, read_manifest


@pytest.fixture
def hdfs_root(hdfs_service):
    uri = f"{hdfs_service.uri}/tests/preprocess-{uuid.uuid4().hex[:8]}"
    fs = filesystem_for(uri, hdfs_service.webhdfs_url)
    yield uri, fs
    fs.delete(uri)


def test_preprocess_publishes_on_hdfs(spark, workdir, hdfs_service, hdfs_root):
    root, fs = hdfs_root
    config = H3SparkConfig.model_validate({
        "name": "pre-hdfs", "source": {"format": "bundled", "name": "digits"},
        "storage": {"webhdfs_url": hdfs_service.webhdfs_url},
        "dataset": {"uri": f"{root}/digits", "partitions": 2},
        "preprocess": {"steps": [{"kind": "image", "columns": ["features"], "shape": [64], "max_value": 16},
                                 {"kind": "split", "fractions": {"train": 0.9, "test": 0.1}, "seed": 1}]}})
    result = preprocess(config, workdir=str(workdir), spark=spark)
    assert is_published(result.uri, fs) and is_published(result.quarantine_uri, fs)
    manifest = read_manifest(result.uri, fs)
    assert manifest["rows"] == 1797 and set(manifest["splits"]) == {"train", "test"}
    first = manifest["splits"]["test"]["files"][0]
    with fs.open_input(join_uri(result.uri, first["path"])) as handle:
        table = pq.read_table(handle)
    assert table.num_rows == first["rows"]
    pixels = decode_binary(table.column("features").combine_chunks(), 64)
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    assert Pipeline.load(result.uri).to_dict() == manifest["pipeline"]
    with pytest.raises(DatasetExistsError):
        preprocess(config, workdir=str(workdir), spark=spark)
    assert [name for name in fs.listdir(root) if name.startswith(".")] == []
