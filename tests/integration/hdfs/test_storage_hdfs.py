"""The storage layer against the real local HDFS: WebHDFS operations, range reads, atomic
publish of a Spark-written dataset, and the quickstart with its dataset on hdfs://."""

import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from h3spark.config import load_config
from h3spark.errors import DatasetExistsError, StorageError
from h3spark.storage import (
    WebHDFSFileSystem,
    describe_splits,
    filesystem_for,
    join_uri,
    publishing,
    read_manifest,
    require_published,
    write_manifest,
)
from h3spark.workflow import run

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def hdfs_dir(hdfs_service):
    uri = f"{hdfs_service.uri}/tests/storage-{uuid.uuid4().hex[:8]}"
    fs = filesystem_for(uri, hdfs_service.webhdfs_url)
    fs.makedirs(uri)
    yield uri, fs
    fs.delete(uri)


def test_webhdfs_file_operations(hdfs_dir):
    root, fs = hdfs_dir
    assert isinstance(fs, WebHDFSFileSystem)
    target = join_uri(root, "a", "blob.bin")
    fs.write_bytes(target, bytes(range(256)) * 4)
    assert fs.exists(target) and not fs.isdir(target) and fs.isdir(join_uri(root, "a"))
    assert fs.size(target) == 1024 and fs.listdir(join_uri(root, "a")) == ["blob.bin"]
    with fs.open_input(target) as handle:
        handle.seek(1000)
        assert handle.read(8) == bytes(range(232, 240))
    fs.rename(target, join_uri(root, "a", "moved.bin"))
    with pytest.raises(StorageError):
        fs.read_bytes(target)
    fs.delete(join_uri(root, "a"))
    assert not fs.exists(join_uri(root, "a"))


def test_spark_write_is_published_atomically_on_hdfs(spark, hdfs_dir):
    root, fs = hdfs_dir
    uri = join_uri(root, "squares")
    frame = spark.range(0, 1000, numPartitions=3).selectExpr("id", "id * id AS square")
    with publishing(uri, fs=fs) as tmp:
        frame.write.parquet(tmp)
        write_manifest(tmp, {"rows": 1000, "splits": describe_splits(tmp, fs)}, fs=fs)
    require_published(uri, fs)
    manifest = read_manifest(uri, fs)
    assert sum(item["rows"] for item in manifest["splits"]["all"]["files"]) == 1000
    assert [name for name in fs.listdir(root) if name.startswith(".")] == []
    first = manifest["splits"]["all"]["files"][0]["path"]
    with fs.open_input(join_uri(uri, first)) as handle:  # pyarrow over WebHDFS range reads
        table = pq.ParquetFile(handle).read()
    assert table.column_names == ["id", "square"] and table.num_rows > 0
    assert spark.read.parquet(uri).agg({"square": "sum"}).first()[0] == sum(i * i for i in range(1000))
    with pytest.raises(DatasetExistsError):
        with publishing(uri, fs=fs) as tmp:
            frame.write.parquet(tmp)


def test_failed_spark_write_leaves_nothing_on_hdfs(spark, hdfs_dir):
    root, fs = hdfs_dir
    uri = join_uri(root, "failed")
    with pytest.raises(RuntimeError):
        with publishing(uri, fs=fs) as tmp:
            spark.range(10).write.parquet(tmp)
            raise RuntimeError("job failed after writing")
    assert fs.listdir(root) == []


def test_quickstart_with_dataset_on_hdfs(spark, hdfs_dir, workdir, monkeypatch):
    root, fs = hdfs_dir
    monkeypatch.delenv("H3SPARK_WEBHDFS_URL", raising=False)
    config = load_config(ROOT / "conf/quickstart.yaml", [f"dataset.uri={root}/digits",
                                                         f"storage.webhdfs_url={fs.webhdfs_url}"])
    ctx = run(config, workdir, stop_spark=False)
    assert ctx.outputs["dataset_uri"] == f"{root}/digits"
    assert read_manifest(f"{root}/digits", fs)["rows"] == 1797
    assert ctx.outputs["metrics"]["accuracy"] > 0.9
