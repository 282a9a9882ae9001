"""A preprocessing task's failure on real local Spark reaches the user as its own error, once and clearly."""

from __future__ import annotations

import textwrap
import uuid

import pytest

from h3spark.config import H3SparkConfig
from h3spark.errors import StorageError
from h3spark.preprocess import BadRowError, Pipeline, preprocess
from h3spark.preprocess._tabular import StandardScale

# what the task-side reader raises when the DataNode holding a block is gone (simulated: HDFS stays up)
DATANODE_GONE = ("cannot read row group 0 of hdfs://127.0.0.1:8020/datasets/raw/part-0.parquet: DataNode "
                 "127.0.0.1:9866 refused the connection (Connection refused). Check that HDFS is up.")


def _csv(path, bad_row: bool = False) -> str:
    rows = ["id,x,label"] + [f"{i},{'lots' if bad_row and i == 7 else i * 0.5},{i % 2}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def _config(csv: str, steps: list[dict], strict: bool = False) -> H3SparkConfig:
    return H3SparkConfig.model_validate({
        "name": "failing", "source": {"format": "csv", "path": csv, "options": {"inferSchema": "false"}},
        "dataset": {"uri": "datasets/out", "partitions": 2},
        "preprocess": {"steps": steps, "strict": strict, "fit_mode": "scans"}})


def _storage_worker(spark, tmp_path) -> str:
    """A python step, shipped to the executors, that fails as the task-side reader does when a DataNode is gone."""
    module = f"h3spark_test_worker_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{module}.py"
    path.write_text(textwrap.dedent(f"""
        from h3spark.errors import StorageError

        def read_block(table):
            raise StorageError({DATANODE_GONE!r})
    """))
    spark.sparkContext.addPyFile(str(path))
    return f"{module}:read_block"


def test_a_storage_error_in_a_task_reaches_the_driver_as_itself(spark, workdir, tmp_path):
    steps = [{"kind": "python", "function": _storage_worker(spark, tmp_path), "columns": ["x"], "outputs": ["x"]},
             {"kind": "cast", "columns": {"x": "float64"}}, {"kind": "standard_scale", "columns": ["x"]},
             {"kind": "assemble", "columns": ["x"]}]
    with pytest.raises(StorageError) as caught:
        preprocess(_config(_csv(tmp_path / "raw.csv"), steps), workdir=str(workdir), spark=spark)
    assert str(caught.value) == DATANODE_GONE  # the task's own message: host and port, no Java stack
    assert not (workdir / "datasets" / "out").exists()


def test_a_file_gone_under_a_running_scan_is_a_storage_error_naming_it(spark, tmp_path):
    csv = tmp_path / "vanishing.csv"
    frame = spark.read.options(header="true", inferSchema="true").csv(_csv(csv))
    csv.unlink()  # after Spark planned the scan: its task finds no file (a JVM-side failure)
    with pytest.raises(StorageError) as caught:
        Pipeline([StandardScale(["x"])], label="label").fit(frame)
    message = str(caught.value)
    assert message.startswith("a preprocessing task failed: FileNotFoundException: ") and "vanishing.csv" in message
    assert "\tat " not in message and "Job aborted" not in message


def test_strict_mode_shows_only_the_clear_message(spark, workdir, tmp_path, capfd):
    steps = [{"kind": "cast", "columns": {"x": "float64"}}, {"kind": "standard_scale", "columns": ["x"]},
             {"kind": "assemble", "columns": ["x"]}]
    capfd.readouterr()
    with pytest.raises(BadRowError, match=r"^bad row in step cast\(x\): cannot parse 'lots'.*\"id\": \"7\""):
        preprocess(_config(_csv(tmp_path / "raw.csv", bad_row=True), steps, strict=True), workdir=str(workdir),
                   spark=spark)
    printed = capfd.readouterr()
    noise = printed.out + printed.err
    assert "Exception in task" not in noise and "Lost task" not in noise and "aborting job" not in noise
    assert "\tat org.apache.spark" not in noise and "Traceback" not in noise
