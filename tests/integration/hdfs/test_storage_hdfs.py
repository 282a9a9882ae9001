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
    resolve_published,
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
    folder = resolve_published(uri, fs)
    assert folder == join_uri(uri, "_versions", "00000001")
    with fs.open_input(join_uri(folder, first)) as handle:  # pyarrow over WebHDFS range reads
        table = pq.ParquetFile(handle).read()
    assert table.column_names == ["id", "square"] and table.num_rows > 0
    assert spark.read.parquet(folder).agg({"square": "sum"}).first()[0] == sum(i * i for i in range(1000))
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
    config = load_config(ROOT / "conf/digits_sklearn.yaml", [f"dataset.uri={root}/digits",
                                                         f"storage.webhdfs_url={fs.webhdfs_url}"])
    ctx = run(config, workdir, stop_spark=False)
    assert ctx.outputs["dataset_uri"] == f"{root}/digits"
    assert read_manifest(f"{root}/digits", fs)["rows"] == 1797
    assert ctx.outputs["metrics"]["accuracy"] > 0.9


def test_webhdfs_rename_never_replaces_a_folder_nor_moves_into_it(hdfs_dir):
    root, fs = hdfs_dir
    fs.write_bytes(join_uri(root, "a", "x"), b"1")
    fs.write_bytes(join_uri(root, "b", "y"), b"2")
    fs.makedirs(join_uri(root, "empty"))
    for taken in ("b", "empty"):  # plain WebHDFS RENAME would move a into b as b/a
        with pytest.raises(StorageError, match="already exists") as refused:
            fs.rename(join_uri(root, "a"), join_uri(root, taken))
        assert "is HDFS running" not in str(refused.value)  # the NameNode answered; no connection hint
    assert fs.listdir(join_uri(root, "b")) == ["y"] and fs.listdir(join_uri(root, "empty")) == []
    assert fs.listdir(join_uri(root, "a")) == ["x"]


def publish_squares(spark, uri, fs, count, overwrite=False):
    frame = spark.range(0, count, numPartitions=2).selectExpr("id", "id * id AS square")
    with publishing(uri, overwrite=overwrite, fs=fs) as tmp:
        frame.write.parquet(tmp)
        write_manifest(tmp, {"rows": count, "splits": describe_splits(tmp, fs)}, fs=fs)


def rows_seen(uri, fs):
    """What a reader sees: resolve once, then the manifest and every file of that version."""
    folder = resolve_published(uri, fs)
    files = read_manifest(folder, fs)["splits"]["all"]["files"]
    rows = 0
    for item in files:
        with fs.open_input(join_uri(folder, item["path"])) as handle:
            rows += pq.ParquetFile(handle).metadata.num_rows
    return rows


def test_an_overwrite_on_hdfs_shows_readers_the_old_or_the_new_version_at_every_step(spark, hdfs_dir,
                                                                                  run_after_each_change):
    root, fs = hdfs_dir
    uri = join_uri(root, "squares")
    publish_squares(spark, uri, fs, 100)
    pinned = resolve_published(uri, fs)
    seen, stepping = [], WebHDFSFileSystem(fs.webhdfs_url)
    steps = run_after_each_change(stepping, lambda: seen.append(rows_seen(uri, fs)))
    publish_squares(spark, uri, stepping, 40, overwrite=True)
    assert {"rename", "delete"} <= set(steps) and set(seen) == {100, 40} and seen[-1] == 40
    assert seen.index(40) == steps.index("rename")
    folder = resolve_published(uri, fs)
    assert folder == join_uri(uri, "_versions", "00000002") and fs.listdir(join_uri(uri, "_versions")) == ["00000001", "00000002"]
    assert spark.read.parquet(folder).count() == 40 and spark.read.parquet(pinned).count() == 100  # the previous is kept
    assert fs.listdir(root) == ["squares"]  # no staging folder, no hidden copy
    publish_squares(spark, uri, fs, 7, overwrite=True)
    assert fs.listdir(join_uri(uri, "_versions")) == ["00000002", "00000003"] and rows_seen(uri, fs) == 7


def test_a_writer_that_loses_a_race_on_hdfs_gets_an_error_naming_the_winner_and_leaves_nothing(spark, hdfs_dir):
    root, fs = hdfs_dir
    uri = join_uri(root, "squares")
    publish_squares(spark, uri, fs, 10)
    with pytest.raises(DatasetExistsError, match=f"another writer published {uri}/_versions/00000002 \\(by .*nothing of it"):
        with publishing(uri, overwrite=True, fs=fs) as slow:
            spark.range(5).write.parquet(slow)
            publish_squares(spark, uri, fs, 20, overwrite=True)  # another writer starts and finishes meanwhile
    with pytest.raises(DatasetExistsError, match=f"another writer published {root}/first/_versions/00000001"):
        with publishing(join_uri(root, "first"), fs=fs) as slow:
            spark.range(5).write.parquet(slow)
            publish_squares(spark, join_uri(root, "first"), fs, 3)
    assert rows_seen(uri, fs) == 20 and rows_seen(join_uri(root, "first"), fs) == 3
    assert fs.listdir(root) == ["first", "squares"] and fs.listdir(join_uri(uri, "_versions")) == ["00000001", "00000002"]


def test_overwrite_on_hdfs_leaves_a_folder_that_is_not_a_dataset_untouched(spark, hdfs_dir):
    root, fs = hdfs_dir
    uri = join_uri(root, "d")
    fs.write_bytes(join_uri(uri, "important.txt"), b"x")
    with pytest.raises(DatasetExistsError, match="not an h3spark dataset .* left untouched, even with overwrite: true"):
        publish_squares(spark, uri, fs, 10, overwrite=True)
    assert fs.listdir(root) == ["d"] and fs.listdir(uri) == ["important.txt"]
    assert fs.read_bytes(join_uri(uri, "important.txt")) == b"x"


def test_a_slow_overwrite_on_hdfs_loses_to_newer_versions_that_freed_its_number(spark, hdfs_dir,
                                                                                run_before_first_rename):
    """Versions 2, 3 and 4 land while a writer that began at version 1 writes version 2
    (publishing 4 deletes 2): inside its block, and between its last check and its rename."""
    root, fs = hdfs_dir
    for name, land_before_rename in (("inside", False), ("rename", True)):
        uri = join_uri(root, name)
        publish_squares(spark, uri, fs, 10)
        others = lambda: [publish_squares(spark, uri, fs, count, overwrite=True) for count in (2, 3, 4)]  # noqa: E731
        slow_fs = WebHDFSFileSystem(fs.webhdfs_url)
        if land_before_rename:
            run_before_first_rename(slow_fs, others)
        with pytest.raises(DatasetExistsError, match=f"another writer published {uri}/_versions/00000004 \\(by .*nothing of it"):
            with publishing(uri, overwrite=True, fs=slow_fs) as slow:
                spark.range(5).write.parquet(slow)
                if not land_before_rename:
                    others()
        assert rows_seen(uri, fs) == 4 and fs.listdir(join_uri(uri, "_versions")) == ["00000003", "00000004"]
    assert fs.listdir(root) == ["inside", "rename"]  # no staging folder, no hidden copy
