"""Spark and the ``hdfs`` package against the real local NameNode + DataNode."""

from __future__ import annotations

import getpass
import uuid

import pytest


@pytest.fixture
def hdfs_dir(hdfs_service):
    """A fresh directory on HDFS, removed after the test."""
    from hdfs import InsecureClient

    client = InsecureClient(hdfs_service.webhdfs_url, user=getpass.getuser())
    path = f"/h3spark-tests/{uuid.uuid4().hex}"
    client.makedirs(path)
    yield client, path
    client.delete(path, recursive=True)


def test_spark_writes_and_reads_parquet_on_hdfs(hdfs_service, hdfs_dir, spark):
    client, path = hdfs_dir
    uri = f"{hdfs_service.uri}{path}/squares"
    frame = spark.createDataFrame([(i, i * i) for i in range(100)], "id INT, square INT")
    frame.repartition(2).write.parquet(uri)

    back = spark.read.parquet(uri)

    assert back.count() == 100
    assert back.selectExpr("sum(square)").first()[0] == sum(i * i for i in range(100))


def test_webhdfs_lists_and_reads_what_spark_wrote(hdfs_service, hdfs_dir, spark):
    import io

    import pyarrow.parquet as pq

    client, path = hdfs_dir
    spark.createDataFrame([(i, f"row{i}") for i in range(10)], "id INT, name STRING") \
        .coalesce(1).write.parquet(f"{hdfs_service.uri}{path}/rows")

    names = client.list(f"{path}/rows")
    parts = [n for n in names if n.endswith(".parquet")]
    assert "_SUCCESS" in names and len(parts) == 1
    with client.read(f"{path}/rows/{parts[0]}") as reader:
        table = pq.read_table(io.BytesIO(reader.read()))
    assert sorted(table.column("id").to_pylist()) == list(range(10))


def test_webhdfs_round_trip_of_bytes(hdfs_dir):
    client, path = hdfs_dir
    payload = bytes(range(256)) * 1000
    client.write(f"{path}/blob.bin", data=payload)

    with client.read(f"{path}/blob.bin") as reader:
        assert reader.read() == payload
    assert client.status(f"{path}/blob.bin")["length"] == len(payload)
