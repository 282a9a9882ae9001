"""A Parquet source read by the tasks with pyarrow gives what Spark's own reader gives."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.config import H3SparkConfig
from h3spark.ingest import parquet_files
from h3spark.ingest._parquet_tasks import read_pieces
from h3spark.preprocess import preprocess
from h3spark.storage import local_path, read_manifest, resolve_published

ROWS = 900
STEPS = [
    {"kind": "impute", "columns": ["x", "y"], "strategy": "median"},
    {"kind": "impute", "columns": ["city"], "strategy": "most_frequent"},
    {"kind": "standard_scale", "columns": ["x", "y"]},
    {"kind": "one_hot", "columns": ["city"]},
    {"kind": "split", "fractions": {"train": 0.7, "test": 0.3}, "seed": 2, "key": ["id"]},
    {"kind": "assemble", "columns": ["x", "y", "city"]},
]


@pytest.fixture
def parquet_source(tmp_path):
    """Three files, several row groups each; nulls, a dictionary-encoded column and one row without a label."""
    rng = np.random.default_rng(4)
    folder = tmp_path / "raw"
    folder.mkdir()
    for index, (start, stop) in enumerate([(0, 250), (250, 600), (600, ROWS)]):
        n = stop - start
        label = pa.array(rng.integers(0, 2, n), mask=np.arange(start, stop) == 77)
        city = pa.array(rng.choice(["oslo", "rome", "lima"], n), mask=rng.random(n) < 0.05).dictionary_encode()
        pq.write_table(pa.table({"id": np.arange(start, stop), "x": pa.array(rng.normal(3, 2, n), mask=rng.random(n) < 0.1),
                                 "y": rng.normal(size=n).astype(np.float32), "city": city, "label": label}),
                       folder / f"part-{index}.parquet", row_group_size=100)
    return folder


def _config(source, uri, reader, fit_mode="auto", partitions=None) -> H3SparkConfig:
    return H3SparkConfig.model_validate({
        "name": "pre-parquet", "source": {"format": "parquet", "path": str(source)},
        "dataset": {"uri": uri, "partitions": partitions},
        "preprocess": {"steps": STEPS, "keep": ["id"], "reader": reader, "fit_mode": fit_mode}})


def _rows(uri: str) -> list[dict]:
    table = pq.read_table(local_path(resolve_published(uri)), partitioning="hive")
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def test_blocks_have_the_schema_of_sparks_own_reader(spark, tmp_path):
    table = pa.table({"b": [True, False], "i8": pa.array([1, 2], pa.int8()), "i32": pa.array([1, 2], pa.int32()),
                      "f": pa.array([1.5, 2.5], pa.float32()), "s": pa.array(["a", "b"]).dictionary_encode(),
                      "ls": pa.array(["c", "d"], pa.large_string()), "d": pa.array([1, 2], pa.date32()),
                      "t": pa.array([1_000, 2_000], pa.timestamp("us")), "v": pa.array([[1.0], [2.0, 3.0]], pa.list_(pa.float32())),
                      "z": pa.array([5_000, 6_000], pa.timestamp("ms", "UTC"))})
    table = table.append_column(pa.field("req", pa.int64(), nullable=False), pa.array([7, 8]))  # a required column
    pq.write_table(table, tmp_path / "t.parquet")

    def schema_of(batches):
        for batch in batches:
            yield pa.RecordBatch.from_pydict({"schema": [str(batch.schema)], "rows": [json.dumps(batch.to_pylist(), default=str)]})

    by_spark = spark.read.parquet(str(tmp_path / "t.parquet")).mapInArrow(schema_of, "schema string, rows string").first()
    files = parquet_files(_config(tmp_path / "t.parquet", "unused", "pyarrow").source, None, {}, "pyarrow",
                          spark.conf.get("spark.sql.session.timeZone"))
    block = next(read_pieces(files.pieces, files.arrow_schema, {}))
    assert str(block.schema) == by_spark.schema
    assert json.dumps(block.to_pylist(), default=str) == by_spark.rows
    tasks = files.tasks(spark, 1)
    assert tasks.schema == spark.read.parquet(str(tmp_path / "t.parquet")).schema


def test_pyarrow_and_spark_readers_publish_the_same_dataset(spark, workdir, parquet_source):
    results = {reader: preprocess(_config(parquet_source, f"datasets/{reader}", reader), workdir=str(workdir), spark=spark)
               for reader in ("pyarrow", "spark")}
    by_pyarrow, by_spark = results["pyarrow"], results["spark"]
    assert (by_pyarrow.rows_in, by_pyarrow.rows_quarantined) == (ROWS, 1)
    assert by_pyarrow.pipeline.to_json() == by_spark.pipeline.to_json()
    assert by_pyarrow.splits == by_spark.splits and by_pyarrow.reasons == by_spark.reasons == {"missing label 'label'": 1}
    assert _rows(by_pyarrow.uri) == _rows(by_spark.uri)
    quarantined = [pq.read_table(local_path(resolve_published(result.quarantine_uri))).to_pylist()
                   for result in (by_pyarrow, by_spark)]
    assert quarantined[0] == quarantined[1] and '"id": 77' in quarantined[0][0]["row"]


def test_pyarrow_reader_fits_the_same_state_for_any_task_count_and_fit_mode(spark, workdir, parquet_source):
    runs = [("scans", 1), ("scans", 4), ("scans", None), ("one_pass", 2), ("one_pass", None)]
    fitted = {preprocess(_config(parquet_source, f"datasets/{mode}{tasks}", "pyarrow", mode, tasks), workdir=str(workdir),
                         spark=spark).pipeline.to_json() for mode, tasks in runs}
    assert len(fitted) == 1


def test_a_partitioned_directory_falls_back_to_spark_under_auto(spark, workdir, parquet_source):
    partitioned = workdir / "partitioned"
    for index, year in enumerate((2025, 2026, 2026)):  # Spark discovers the column 'year'; pyarrow would not
        (partitioned / f"year={year}").mkdir(parents=True, exist_ok=True)
        (parquet_source / f"part-{index}.parquet").rename(partitioned / f"year={year}" / f"part-{index}.parquet")
    result = preprocess(_config(partitioned, "datasets/out", "auto"), workdir=str(workdir), spark=spark)
    assert result.rows_in == ROWS
    source_schema = read_manifest(result.uri)["source_schema"]
    assert "year" in [field["name"] for field in source_schema["fields"]]


def test_more_partitions_than_row_groups_go_to_sparks_reader_under_auto(spark, workdir, parquet_source, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="h3spark")
    result = preprocess(_config(parquet_source, "datasets/many", "auto", "scans", partitions=12), workdir=str(workdir),
                        spark=spark)  # 3 + 4 + 3 row groups
    assert result.rows_in == ROWS
    assert "dataset.partitions is 12 but the source has 10 row groups" in caplog.text
    assert "Spark repartitions the rows" in caplog.text
