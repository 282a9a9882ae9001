"""The task-side Parquet read: planning from footers, falling back to Spark, Spark's types, damaged files."""

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from h3spark.config import SourceConfig
from h3spark.errors import ConfigError, DataError, StorageError
from h3spark.ingest import parquet_files
from h3spark.ingest._parquet_tasks import _deal, read_pieces


def _write(path, rows, row_group_size, start=0, **extra):
    table = pa.table({"id": pa.array(np.arange(start, start + rows)), "x": pa.array(np.linspace(0, 1, rows)), **extra})
    pq.write_table(table, path, row_group_size=row_group_size)


def _source(path, **options):
    return SourceConfig(format="parquet", path=str(path), **options)


def _plan(path, reader="auto", **options):
    return parquet_files(_source(path, **options), None, {}, reader)


def test_row_groups_are_dealt_to_tasks_in_order_with_about_equal_rows(tmp_path):
    _write(tmp_path / "a.parquet", 300, 100)
    _write(tmp_path / "b.parquet", 500, 100, start=300)
    (tmp_path / "_SUCCESS").write_text("")  # marker files are not data, as for Spark
    files = _plan(tmp_path)
    assert (files.rows, len(files.pieces)) == (800, 8) and files.size_bytes > 0
    tasks = _deal(files.pieces, 3)
    assert [sum(piece.rows for piece in task) for task in tasks] == [300, 300, 200]
    flat = [(piece.uri.rsplit("/", 1)[1], piece.row_group) for task in tasks for piece in task]
    assert flat == [("a.parquet", 0), ("a.parquet", 1), ("a.parquet", 2)] + [("b.parquet", i) for i in range(5)]
    assert [len(task) for task in _deal(files.pieces[:2], 4)] == [1, 0, 1, 0]  # more tasks than pieces: some idle
    read = pa.Table.from_batches(list(read_pieces(tasks[1], files.arrow_schema, {})))
    assert read.column("id").to_pylist() == list(range(300, 600))


def test_a_single_file_is_a_source_too(tmp_path):
    _write(tmp_path / "one.parquet", 50, 20)
    files = _plan(tmp_path / "one.parquet")
    assert files.rows == 50 and files.default_tasks(slots=2) == 2 and files.default_tasks(slots=8) == 3


@pytest.mark.parametrize("case, why", [
    ("options", "sets Spark reader options (mergeSchema)"),
    ("glob", "is a glob pattern"),
    ("nested", "has subdirectories (year=2026)"),
    ("schemas", "has another schema than"),
    ("uint", "has no Spark equivalent"),
    ("csv", "its format is csv"),
    ("empty", "holds no files"),
    ("int96", "stores at as INT96 timestamps"),
])
def test_spark_reads_what_pyarrow_would_read_differently(tmp_path, case, why):
    source_dir = tmp_path / "data"
    source_dir.mkdir()
    _write(source_dir / "a.parquet", 10, 5)
    path, options = source_dir, {}
    if case == "options":
        options = {"options": {"mergeSchema": "true"}}
    elif case == "glob":
        path = source_dir / "*.parquet"
    elif case == "nested":
        (source_dir / "year=2026").mkdir()
    elif case == "schemas":
        pq.write_table(pa.table({"id": [1.5]}), source_dir / "b.parquet")
    elif case == "uint":
        pq.write_table(pa.table({"n": pa.array([1], pa.uint32())}), source_dir / "a.parquet")
    elif case == "empty":
        path = tmp_path / "nothing"
        path.mkdir()
    elif case == "int96":
        pq.write_table(pa.table({"at": pa.array([1, 2], pa.timestamp("us"))}), source_dir / "a.parquet",
                       use_deprecated_int96_timestamps=True)
    fmt = "csv" if case == "csv" else "parquet"
    source = SourceConfig(format=fmt, path=str(path), **options)
    assert parquet_files(source, None, {}, "auto") is None
    with pytest.raises(ConfigError, match=rf"reader: pyarrow cannot read this source: .*{re.escape(why)}.*reader: spark"):
        parquet_files(source, None, {}, "pyarrow")


def test_reader_spark_never_plans(tmp_path):
    _write(tmp_path / "a.parquet", 10, 5)
    assert _plan(tmp_path, reader="spark") is None


def test_a_missing_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"source.path file://.*/missing does not exist"):
        _plan(tmp_path / "missing")


def test_blocks_have_the_types_spark_would_hand_a_task(tmp_path):
    table = pa.table({"city": pa.array(["oslo", "rome", None]).dictionary_encode(),
                      "note": pa.array(["a", "b", "c"], pa.large_string()),
                      "at": pa.array([1_001, 2_000, 3_999], pa.timestamp("ns")),
                      "zoned": pa.array([1, 2, 3], pa.timestamp("ms", tz="Europe/Oslo")),
                      "small": pa.array([1, 2, 3], pa.int8())})
    pq.write_table(table, tmp_path / "t.parquet")
    files = _plan(tmp_path)
    batch = next(read_pieces(files.pieces, files.arrow_schema, {}))
    assert batch.schema.types == [pa.string(), pa.string(), pa.timestamp("us"), pa.timestamp("us", "UTC"), pa.int8()]
    assert batch.column(2).cast(pa.int64()).to_pylist() == [1, 2, 3]  # nanoseconds truncated, as Spark does
    assert batch.column(3).cast(pa.int64()).to_pylist() == [1000, 2000, 3000]  # the same instants
    assert batch.column(0).to_pylist() == ["oslo", "rome", None]
    assert files.tasks(None, 1).schema.simpleString() == "struct<city:string,note:string,at:timestamp_ntz,zoned:timestamp,small:tinyint>"


def test_a_file_damaged_after_planning_fails_with_its_name(tmp_path):
    _write(tmp_path / "a.parquet", 100, 50)
    files = _plan(tmp_path)
    size = (tmp_path / "a.parquet").stat().st_size
    (tmp_path / "a.parquet").write_bytes(b"PAR1" + b"\0" * (size - 8) + b"PAR1")
    with pytest.raises(DataError, match=r"cannot read row group 0 of file://.*/a.parquet: .*rewrite it"):
        list(read_pieces(files.pieces, files.arrow_schema, {}))


def test_unreachable_storage_falls_back_under_auto_and_fails_under_pyarrow():
    source = SourceConfig(format="parquet", path="hdfs://127.0.0.1:1/data")
    storage = {"webhdfs_url": "http://127.0.0.1:1"}  # nothing listens there
    assert parquet_files(source, None, storage, "auto") is None
    with pytest.raises(StorageError, match=r"WebHDFS at http://127.0.0.1:1"):
        parquet_files(source, None, storage, "pyarrow")


def test_a_file_that_is_not_parquet_is_a_data_error_naming_it(tmp_path):
    _write(tmp_path / "a.parquet", 10, 5)
    (tmp_path / "notes.txt").write_text("not parquet")
    for reader in ("auto", "pyarrow"):
        with pytest.raises(DataError, match=r"notes.txt is not a readable Parquet file .*Remove it"):
            _plan(tmp_path, reader=reader)


def test_columns_are_nullable_and_zoned_timestamps_carry_the_session_time_zone(tmp_path):
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("at", pa.timestamp("us", "UTC"))])
    pq.write_table(pa.table({"id": [1, 2], "at": [0, 3_600_000_000]}, schema=schema), tmp_path / "t.parquet")
    files = parquet_files(_source(tmp_path), None, {}, "auto", timezone="Europe/Oslo")
    assert all(field.nullable for field in files.arrow_schema)
    assert files.arrow_schema.field("at").type == pa.timestamp("us", "Europe/Oslo")
    batch = next(read_pieces(files.pieces, files.arrow_schema, {}))
    assert batch.schema == files.arrow_schema and batch.column(1).cast(pa.int64()).to_pylist() == [0, 3_600_000_000]


def test_a_task_reading_several_files_keeps_one_open(tmp_path, monkeypatch):
    import h3spark.ingest._parquet_tasks as tasks

    for index in range(5):
        _write(tmp_path / f"{index}.parquet", 20, 10, start=20 * index)
    files = _plan(tmp_path)
    opened, live = [], []
    real = tasks._handle

    def counting(uri, storage):
        handle = real(uri, storage)
        opened.append(handle)
        live.append(sum(not item.closed for item in opened))
        return handle

    monkeypatch.setattr(tasks, "_handle", counting)
    rows = [row for batch in read_pieces(files.pieces, files.arrow_schema, {}) for row in batch.column(0).to_pylist()]
    assert rows == list(range(100)) and len(opened) == 5
    assert max(live) == 1 and all(handle.closed for handle in opened)
