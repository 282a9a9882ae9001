"""Spark and the versioned dataset layout on file://: a published dataset read back as a
source (Spark's reader and the task-side pyarrow plan) is its current version, Spark
pointed at the dataset's URI itself finds no files rather than a mix of versions, and a
run with overwrite leaves a folder that is not a dataset alone."""

import os
from pathlib import Path

import pytest

from h3spark.config import SourceConfig, load_config
from h3spark.errors import DatasetExistsError
from h3spark.ingest import parquet_files, read_source
from h3spark.storage import describe_splits, publishing, resolve_published, write_manifest
from h3spark.workflow import run

ROOT = Path(__file__).resolve().parents[3]


def test_a_published_dataset_is_read_as_a_source_at_its_current_version(spark, tmp_path):
    uri = f"file://{tmp_path}/ds"
    for count, overwrite in ((10, False), (25, True)):
        frame = spark.range(count, numPartitions=2).selectExpr("id", "CAST(id AS DOUBLE) AS x")
        with publishing(uri, overwrite=overwrite) as tmp:
            frame.write.parquet(tmp)
            write_manifest(tmp, {"rows": count, "splits": describe_splits(tmp)})
    source = SourceConfig(format="parquet", path=uri)
    assert read_source(spark, source).count() == 25
    plan = parquet_files(source, None, {}, "pyarrow")
    assert plan.uri == resolve_published(uri) == f"{uri}/_versions/00000002" and plan.rows == 25
    assert spark.read.parquet(resolve_published(uri)).count() == 25
    with pytest.raises(Exception, match="UNABLE_TO_INFER_SCHEMA"):  # the layout's versions are hidden from Spark
        spark.read.parquet(uri).count()


def test_a_run_with_overwrite_leaves_a_folder_that_is_not_a_dataset_untouched(spark, workdir):
    folder = workdir / "d"
    folder.mkdir()
    (folder / "important.txt").write_text("x")
    config = load_config(ROOT / "conf/digits_sklearn.yaml", [f"dataset.uri={folder}", "dataset.overwrite=true", "training=null"])
    with pytest.raises(DatasetExistsError, match="d exists but is not an h3spark dataset") as refused:
        run(config, workdir, stop_spark=False)
    assert refused.value.exit_code == 2
    assert os.listdir(folder) == ["important.txt"] and (folder / "important.txt").read_text() == "x"
    assert [name for name in os.listdir(workdir) if name.startswith(".")] == []
