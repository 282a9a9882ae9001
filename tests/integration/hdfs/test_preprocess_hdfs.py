"""Preprocessing against the real local HDFS: tasks write Parquet over WebHDFS, publish is atomic."""

import uuid

import pyarrow.parquet as pq
import pytest

from h3spark.config import H3SparkConfig
from h3spark.errors import DatasetExistsError
from h3spark.preprocess import Pipeline, preprocess
from h3spark.preprocess._writer import decode_binary
from h3spark.storage import filesystem_for, is_published, join_uri, read_manifest, resolve_published


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
    with fs.open_input(join_uri(resolve_published(result.uri, fs), first["path"])) as handle:
        table = pq.read_table(handle)
    assert table.num_rows == first["rows"]
    pixels = decode_binary(table.column("features").combine_chunks(), 64)
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    assert Pipeline.load(result.uri).to_dict() == manifest["pipeline"]
    with pytest.raises(DatasetExistsError):
        preprocess(config, workdir=str(workdir), spark=spark)
    assert [name for name in fs.listdir(root) if name.startswith(".")] == []


def test_tasks_read_a_parquet_source_on_hdfs_as_spark_does(spark, workdir, hdfs_service, hdfs_root):
    import numpy as np
    import pyarrow as pa

    from h3spark.ingest import parquet_files

    root, fs = hdfs_root
    rng = np.random.default_rng(3)
    for index in range(2):
        table = pa.table({"x": pa.array(rng.normal(size=300), mask=rng.random(300) < 0.1),
                          "c": rng.choice(["a", "b"], 300), "label": rng.integers(0, 2, 300)})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=100)
        fs.write_bytes(f"{root}/raw/part-{index}.parquet", sink.getvalue().to_pybytes())
    storage = {"webhdfs_url": hdfs_service.webhdfs_url}
    steps = [{"kind": "impute", "columns": ["x"]}, {"kind": "one_hot", "columns": ["c"]},
             {"kind": "assemble", "columns": ["x", "c"]}]
    results = {}
    for reader in ("pyarrow", "spark"):
        config = H3SparkConfig.model_validate({
            "name": "pre-hdfs-parquet", "source": {"format": "parquet", "path": f"{root}/raw"}, "storage": storage,
            "dataset": {"uri": f"{root}/{reader}"}, "preprocess": {"steps": steps, "reader": reader}})
        results[reader] = preprocess(config, workdir=str(workdir), spark=spark)
    assert len(parquet_files(config.source, None, storage).pieces) == 6  # three row groups a file, over WebHDFS
    assert results["pyarrow"].rows_out == results["spark"].rows_out == 600
    assert results["pyarrow"].pipeline.to_json() == results["spark"].pipeline.to_json()
